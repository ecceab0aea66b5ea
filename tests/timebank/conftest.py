"""A small seeded world for the time-bank tests, on SQLite and PostgreSQL.

``world`` gives a migrated database with one street, two communities, two organizations
and five residents (four in the first community); ``snapshot`` captures every balance and
the row count of every table the time bank writes, so a refusal can be shown to change
nothing at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import upgrade
from storage.models import (
    AuditLog,
    Certificate,
    Community,
    Counter,
    FamilyLink,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    LinkCode,
    Organization,
    OutboxMessage,
    Redemption,
    Reward,
    Street,
    User,
    WebMessage,
)

WATCHED = (
    LedgerAccount,
    LedgerTransaction,
    LedgerEntry,
    AuditLog,
    Redemption,
    FamilyLink,
    LinkCode,
    Certificate,
    OutboxMessage,
    WebMessage,
)


@dataclass
class World:
    engine: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    community_id: int
    other_community_id: int
    org_id: int
    other_org_id: int
    users: list[int]  # users[0..3] live in community_id, users[4] in the other one
    backend: str


async def seed(factory: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(factory) as session:
        street = Street(name="梅园街道")
        session.add(street)
        await session.flush()
        home = Community(street_id=street.id, name="桂花社区")
        other = Community(street_id=street.id, name="松柏社区")
        org = Organization(name="梅园志愿者协会")
        other_org = Organization(name="桂花老年服务中心")
        session.add_all([home, other, org, other_org])
        await session.flush()
        names = ["王阿姨", "李大爷", "张小明", "赵奶奶", "钱叔叔"]
        users = [
            User(display_name=name, community_id=home.id if i < 4 else other.id)
            for i, name in enumerate(names)
        ]
        session.add_all(users)
        await session.flush()
        return {
            "community_id": home.id,
            "other_community_id": other.id,
            "org_id": org.id,
            "other_org_id": other_org.id,
            "users": [u.id for u in users],
        }


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    engine = create_engine(database_url)
    await upgrade(engine)
    factory = create_session_factory(engine)
    ids = await seed(factory)
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    try:
        yield World(engine=engine, factory=factory, backend=backend, **ids)
    finally:
        await engine.dispose()


Snapshot = dict[str, Any]


async def take_snapshot(factory: async_sessionmaker[AsyncSession]) -> Snapshot:
    async with factory() as session:
        snap: Snapshot = {}
        for model in WATCHED:
            snap[model.__tablename__] = await session.scalar(
                select(func.count()).select_from(model)
            )
        snap["balances"] = dict(
            (await session.execute(select(LedgerAccount.code, LedgerAccount.balance))).all()
        )
        snap["stock"] = dict((await session.execute(select(Reward.id, Reward.stock))).all())
        snap["redemptions"] = dict(
            (await session.execute(select(Redemption.id, Redemption.status))).all()
        )
        snap["codes_used"] = dict(
            (await session.execute(select(LinkCode.code, LinkCode.used_at))).all()
        )
        snap["counters"] = dict((await session.execute(select(Counter.name, Counter.value))).all())
        return snap


@pytest.fixture
def snapshot(world: World) -> Callable[[], Awaitable[Snapshot]]:
    return lambda: take_snapshot(world.factory)


async def check_ledger(factory: async_sessionmaker[AsyncSession]) -> None:
    """The ledger's invariants: zero-sum, cached balance = sum of entries, audited."""
    async with factory() as session:
        total = await session.scalar(select(func.coalesce(func.sum(LedgerAccount.balance), 0)))
        assert total == 0
        rows = await session.execute(
            select(LedgerAccount.code, LedgerAccount.balance, func.sum(LedgerEntry.amount))
            .outerjoin(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
            .group_by(LedgerAccount.id, LedgerAccount.code, LedgerAccount.balance)
        )
        for code, balance, summed in rows:
            assert balance == (summed or 0), code
            if not code.startswith("pool:"):
                assert balance >= 0, code
        unbalanced = await session.execute(
            select(LedgerEntry.transaction_id)
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
        assert unbalanced.all() == []
        txns = await session.scalar(select(func.count()).select_from(LedgerTransaction))
        audited = await session.scalar(
            select(func.count(func.distinct(AuditLog.target))).where(
                AuditLog.target.like("ledger:%")
            )
        )
        assert txns == audited


@pytest.fixture
def ledger_ok(world: World) -> Callable[[], Awaitable[None]]:
    return lambda: check_ledger(world.factory)
