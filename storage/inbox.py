"""The durable inbox: store an inbound event under its dedupe key before acknowledging it.

This is the acknowledging path, so it never opens an ORM session (CONVENTIONS.md: about an
order of magnitude cheaper). ``InboxWriter`` picks the cheapest durable write per backend:

- PostgreSQL: the events that arrive while the previous write is in flight are stored with
  ONE ``INSERT … ON CONFLICT DO NOTHING RETURNING`` in one transaction (group commit).
- SQLite: the driver itself (``sqlite3``), one autocommitted insert under the process's
  writer lock. In WAL mode with synchronous=NORMAL that is tens of microseconds, cheaper
  than the thread hand-offs of the async driver.

Each caller still waits until its own row is committed before it answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.db import write, write_lock
from storage.models import InboxEvent, utcnow

_TABLE = InboxEvent.__table__


def _new_row(source: str, event_key: str, payload: str) -> dict[str, Any]:
    return {
        "source": source,
        "event_key": event_key[:160],
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "received_at": utcnow(),
    }


async def store_event(engine: AsyncEngine, source: str, event_key: str, payload: str) -> int | None:
    """Insert the event; return its id, or None when (source, key) was already stored."""
    values = _new_row(source, event_key, payload)
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(_TABLE)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source", "event_key"])
        .returning(_TABLE.c.id)
    )
    async with write(engine) as conn:
        return (await conn.execute(stmt)).scalar_one_or_none()


async def get_event(engine: AsyncEngine, source: str, event_key: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(_TABLE).where(_TABLE.c.source == source, _TABLE.c.event_key == event_key)
                )
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None


async def finish_event(
    engine: AsyncEngine,
    event_id: int,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    async with write(engine) as conn:
        await conn.execute(
            update(_TABLE)
            .where(_TABLE.c.id == event_id)
            .values(
                status="failed" if error else "done",
                result=result,
                error=error,
                processed_at=utcnow(),
                attempts=_TABLE.c.attempts + 1,
            )
        )


async def mark_done(session: AsyncSession, event_id: int, result: dict[str, Any]) -> None:
    """Mark an event processed inside the caller's transaction (with the work it caused)."""
    await session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == event_id)
        .values(status="done", result=result, processed_at=utcnow(), attempts=_TABLE.c.attempts + 1)
    )


async def stale_pending(
    engine: AsyncEngine, older_than_s: float, limit: int = 100, max_attempts: int = 5
) -> list[dict[str, Any]]:
    """Events stored but never processed (a crash between ack and work): to be replayed."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(_TABLE)
                    .where(
                        _TABLE.c.status == "pending",
                        _TABLE.c.received_at < cutoff,
                        _TABLE.c.attempts < max_attempts,
                    )
                    .order_by(_TABLE.c.id)
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
        return [dict(r) for r in rows]


async def mark_attempt(engine: AsyncEngine, event_id: int) -> None:
    async with write(engine) as conn:
        await conn.execute(
            update(_TABLE).where(_TABLE.c.id == event_id).values(attempts=_TABLE.c.attempts + 1)
        )


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format


class _SqliteDriver:
    """Direct sqlite3 access for the inbox's hot path (same file, same writer lock)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.conn = sqlite3.connect(
            engine.url.database or ":memory:", isolation_level=None, check_same_thread=False
        )
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("PRAGMA synchronous=NORMAL")

    async def insert(self, source: str, event_key: str, payload: str) -> int | None:
        now = utcnow().strftime(_SQLITE_TIME)
        async with write_lock(self.engine):
            row = self.conn.execute(
                "INSERT INTO inbox_events (source, event_key, payload, status, attempts,"
                " received_at) VALUES (?, ?, ?, 'pending', 0, ?)"
                " ON CONFLICT (source, event_key) DO NOTHING RETURNING id",
                (source, event_key, payload, now),
            ).fetchone()
        return int(row[0]) if row else None

    def close(self) -> None:
        self.conn.close()


class InboxWriter:
    """The acknowledging path's durable write (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, max_batch: int = 200) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[int | None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sqlite = _SqliteDriver(engine) if engine.dialect.name == "sqlite" else None

    async def store(self, source: str, event_key: str, payload: str) -> int | None:
        """Durably store the event; its id, or None when (source, key) was stored before."""
        if self._sqlite is not None:
            return await self._sqlite.insert(source, event_key[:160], payload)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inbox-writer")
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        values = _new_row(source, event_key, payload)
        self._pending.append((values, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    await self._flush(batch)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)

    async def _flush(self, batch: list[tuple[dict[str, Any], asyncio.Future[int | None]]]) -> None:
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for values, _ in batch:
            unique.setdefault((values["source"], values["event_key"]), values)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(_TABLE)
            .values(list(unique.values()))
            .on_conflict_do_nothing(index_elements=["source", "event_key"])
            .returning(_TABLE.c.id, _TABLE.c.source, _TABLE.c.event_key)
        )
        async with write(self.engine) as conn:
            rows = (await conn.execute(stmt)).all()
        ids = {(row.source, row.event_key): row.id for row in rows}
        for values, future in batch:
            key = (values["source"], values["event_key"])
            # Only the first of several same-key events in one batch gets the new row.
            new_id = ids.pop(key, None)
            if not future.done():
                future.set_result(new_id)

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
