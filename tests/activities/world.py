"""A small seeded world for the activity tests, on SQLite and PostgreSQL, with a frozen clock.

Two communities; organization A serves the first one, B serves every community; six
residents, each with a Telegram identity so every notice is an outbox row we can read back
(``notices``). The clock starts on Monday 2026-11-23 10:00 local time (outside quiet hours).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from community.activities import ActivityDraft, create_activity, publish_activity
from community.audit import Actor
from community.clock import FrozenClock, use_clock
from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import upgrade
from storage.models import (
    Activity,
    ActivitySignup,
    AuditLog,
    Broadcast,
    Community,
    Identity,
    LedgerAccount,
    LedgerTransaction,
    Organization,
    OrgCommunity,
    OutboxMessage,
    Street,
    User,
)

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
ORG_A = Actor("org", "A")
ORG_B = Actor("org", "B")


@dataclass
class World:
    engine: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    clock: FrozenClock
    database_url: str
    community_id: int
    other_community_id: int
    org_id: int
    other_org_id: int
    users: list[int] = field(default_factory=list)

    def chat(self, user_id: int) -> str:
        return f"chat{user_id}"


@pytest.fixture
def frozen() -> Iterator[FrozenClock]:
    with use_clock(START) as clock:
        yield clock


@pytest.fixture
async def world(database_url: str, frozen: FrozenClock) -> AsyncIterator[World]:
    engine = create_engine(database_url)
    await upgrade(engine)
    factory = create_session_factory(engine)
    async with transaction(factory) as session:
        street = Street(name="梅园街道")
        session.add(street)
        await session.flush()
        home = Community(street_id=street.id, name="桂花社区")
        other = Community(street_id=street.id, name="松柏社区")
        org = Organization(name="梅园志愿者协会", notify="telegram:org-a")
        other_org = Organization(name="全城公益", all_communities=True)
        session.add_all([home, other, org, other_org])
        await session.flush()
        session.add(OrgCommunity(org_id=org.id, community_id=home.id))
        users = [
            User(display_name=f"居民{i}", community_id=home.id if i < 5 else other.id)
            for i in range(6)
        ]
        session.add_all(users)
        await session.flush()
        for user in users:
            session.add(
                Identity(
                    user_id=user.id,
                    channel="telegram",
                    external_id=f"tg{user.id}",
                    chat_id=f"chat{user.id}",
                )
            )
        ids = [u.id for u in users]
        world = World(
            engine=engine,
            factory=factory,
            clock=frozen,
            database_url=database_url,
            community_id=home.id,
            other_community_id=other.id,
            org_id=org.id,
            other_org_id=other_org.id,
            users=ids,
        )
    try:
        yield world
    finally:
        await engine.dispose()


def draft(world: World, **overrides: Any) -> ActivityDraft:
    """Thursday 10:00–12:00 local, in the first community, 2 points an hour."""
    values: dict[str, Any] = {
        "title": "敬老院陪伴",
        "place": "桂花社区活动室",
        "community_id": world.community_id,
        "category": "elderly",
        "starts_at": START + timedelta(days=3),
        "ends_at": START + timedelta(days=3, hours=2),
        "description": "陪老人聊天、读报。",
        "capacity": None,
        "points_mode": "hourly",
        "points_rate": 2,
    }
    values.update(overrides)
    return ActivityDraft(**values)


async def published(world: World, **overrides: Any) -> int:
    """Create and publish an activity of organization A; returns its id."""
    async with transaction(world.factory) as session:
        activity = await create_activity(
            session, org_id=world.org_id, actor=ORG_A, draft=draft(world, **overrides)
        )
        await publish_activity(session, activity_id=activity.id, org_id=world.org_id, actor=ORG_A)
        return activity.id


async def notices(world: World, user_id: int | None = None) -> list[OutboxMessage]:
    """Outbox rows (to one resident's chat, or all), oldest first."""
    async with world.factory() as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if user_id is not None:
            stmt = stmt.where(OutboxMessage.target == world.chat(user_id))
        return list(await session.scalars(stmt))


async def get_activity(world: World, activity_id: int) -> Activity:
    async with world.factory() as session:
        activity = await session.get(Activity, activity_id)
        assert activity is not None
        return activity


async def signups(world: World, activity_id: int) -> dict[int, ActivitySignup]:
    """user id → sign-up row."""
    async with world.factory() as session:
        rows = await session.scalars(
            select(ActivitySignup).where(ActivitySignup.activity_id == activity_id)
        )
        return {s.user_id: s for s in rows}


async def balance(world: World, user_id: int) -> int:
    async with world.factory() as session:
        value = await session.scalar(
            select(LedgerAccount.balance).where(LedgerAccount.code == f"user:{user_id}")
        )
        return int(value or 0)


async def state(world: World) -> dict[str, Any]:
    """Everything a refused action must leave untouched."""
    async with world.factory() as session:
        snap: dict[str, Any] = {}
        for model in (ActivitySignup, AuditLog, OutboxMessage, Broadcast, LedgerTransaction):
            snap[model.__tablename__] = await session.scalar(
                select(func.count()).select_from(model)
            )
        snap["activities"] = [
            (a.id, a.status, a.version, a.title, a.place, a.starts_at, a.capacity)
            for a in await session.scalars(select(Activity).order_by(Activity.id))
        ]
        snap["signups"] = [
            (s.id, s.status, s.queued_at, s.checked_in_at, s.checked_out_at, s.attendance, s.hours)
            for s in await session.scalars(select(ActivitySignup).order_by(ActivitySignup.id))
        ]
        return snap
