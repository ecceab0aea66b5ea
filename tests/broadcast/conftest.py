"""A migrated database per test (both backends) and small builders for residents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import upgrade
from storage.models import Community, Identity, NoticePrefs, Street, Subscription, User

_TOMORROW = (datetime.now(UTC) + timedelta(days=1)).date()


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """``hour:minute`` UTC tomorrow (+ ``days``): later than any row the real clock wrote."""
    return datetime.combine(_TOMORROW + timedelta(days=days), time(hour, minute), tzinfo=UTC)


DAYTIME = at(2)  # 10:00 in Shanghai: outside the default quiet hours (21:00–08:00)


@pytest.fixture
async def factory(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await upgrade(engine)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def add_communities(factory: async_sessionmaker[AsyncSession], *names: str) -> list[int]:
    async with transaction(factory) as session:
        street = Street(name="梅园街道")
        session.add(street)
        await session.flush()
        rows = [Community(street_id=street.id, name=name) for name in names]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def add_resident(
    factory: async_sessionmaker[AsyncSession],
    *,
    community_id: int | None,
    categories: tuple[str, ...] = (),
    follows: tuple[int, ...] = (),
    identities: tuple[tuple[str, str], ...] = (("telegram", ""),),
    quiet: tuple[int, int] | None = (0, 0),
    paused: bool = False,
    **user: Any,
) -> tuple[int, list[int]]:
    """A resident and their identities ((channel, chat id), oldest first); (user id, ids).

    ``quiet`` None leaves NoticePrefs out (the defaults apply); (0, 0) means no quiet hours.
    An empty chat id becomes a unique one derived from the user id.
    """
    async with transaction(factory) as session:
        row = User(community_id=community_id, **user)
        session.add(row)
        await session.flush()
        ids = []
        for index, (channel, chat) in enumerate(identities):
            chat = chat or str(100_000 + row.id * 10 + index)
            identity = Identity(
                user_id=row.id,
                channel=channel,
                external_id=f"u{row.id}-{index}",
                chat_id=None if channel == "web" else chat,
                created_at=datetime(2026, 1, 1 + index, tzinfo=UTC),
            )
            session.add(identity)
            await session.flush()
            ids.append(identity.id)
        for category in categories:
            session.add(Subscription(user_id=row.id, scope="category", value=category))
        for community in follows:
            session.add(Subscription(user_id=row.id, scope="community", value=str(community)))
        if quiet is not None or paused:
            start, end = quiet if quiet is not None else (21 * 60, 8 * 60)
            session.add(
                NoticePrefs(user_id=row.id, quiet_start=start, quiet_end=end, paused=paused)
            )
        return row.id, ids
