"""Storage on both backends: migrations, the inbox's dedupe, request numbers under load."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage import inbox
from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import SCHEMA_HEAD, head_revision, is_current, upgrade
from storage.models import Base


async def test_migrations_reach_head_and_match_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert not await is_current(engine)
        await upgrade(engine)
        await upgrade(engine)  # idempotent
        assert await is_current(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert diff == [], f"models and migrations differ: {diff}"
        assert head_revision() == SCHEMA_HEAD  # the fast start-up check names the real head
    finally:
        await engine.dispose()


async def test_inbox_stores_each_key_once_under_concurrency(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        ids = await asyncio.gather(
            *(inbox.store_event(engine, "generic:x", "same-key", "{}") for _ in range(20))
        )
        assert len([i for i in ids if i is not None]) == 1
        other = await inbox.store_event(engine, "telegram", "same-key", "{}")
        assert other is not None  # the key is per source
        stored = await inbox.get_event(engine, "generic:x", "same-key")
        assert stored is not None and stored["status"] == "pending"
        await inbox.finish_event(engine, stored["id"], result={"replies": []})
        stored = await inbox.get_event(engine, "generic:x", "same-key")
        assert stored is not None and stored["status"] == "done"
    finally:
        await engine.dispose()


async def test_request_numbers_are_unique_under_concurrency(database_url: str) -> None:
    from datetime import UTC, datetime

    from community.numbering import next_request_number

    engine = create_engine(database_url)
    factory = create_session_factory(engine)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    try:
        await upgrade(engine)

        async def one() -> str:
            for _ in range(20):  # PostgreSQL may abort one of two first-ever inserts: retry
                try:
                    async with transaction(factory) as session:
                        return await next_request_number(session, now)
                except Exception:
                    await asyncio.sleep(0.01)
            raise AssertionError("could not get a number")

        numbers = await asyncio.gather(*(one() for _ in range(15)))
        assert sorted(numbers) == [f"R2611-{i:04d}" for i in range(1, 16)]
    finally:
        await engine.dispose()


def test_state_machine_rejects_forbidden_transitions() -> None:
    from community import lifecycle as lc
    from community.errors import InvalidTransition

    assert lc.next_status("accept", lc.ROUTED) == lc.ACCEPTED
    for action, status in [
        ("accept", lc.PENDING_REVIEW),
        ("resolve", lc.ROUTED),
        ("cancel", lc.RESOLVED),
        ("start", lc.CLOSED),
        ("accept", lc.ACCEPTED),
    ]:
        with pytest.raises(InvalidTransition):
            lc.next_status(action, status)
    assert all(s in lc.ALL_STATUSES for m in lc.TRANSITIONS.values() for s in (*m, *m.values()))
