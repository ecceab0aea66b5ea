"""Engine and session factory: one place for driver quirks.

SQLite needs WAL, a busy timeout and foreign keys switched on per connection; it also
drops time zones, which ``UTCDateTime`` in models.py re-attaches on read.

SQLite allows one writer at a time. Letting several connections race for that lock makes
them sleep in SQLite's busy handler (measured: p99 near 1 s under 40 concurrent writers),
so in this process write transactions queue on an asyncio lock instead, and readers run
beside them (WAL). With every writer serialized there is no stale-snapshot upgrade, so a
plain deferred BEGIN is safe. PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class _InlineSqliteConnection(aiosqlite.Connection):
    """aiosqlite, but each statement runs on the event loop instead of its worker thread.

    Measured here: a statement through aiosqlite's thread hand-off costs ~0.5 ms of CPU,
    while SQLite itself (WAL, synchronous=NORMAL, a local file) answers our small indexed
    statements in microseconds. Writers are serialized in-process (``write_lock``), so the
    only wait that could block the loop is another *process* writing the same file, which
    ``busy_timeout`` bounds. The worker thread still opens and closes the connection.
    """

    async def _execute(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def _sqlite_creator(path: str):  # type: ignore[no-untyped-def]
    async def connect() -> aiosqlite.Connection:
        def connector() -> sqlite3.Connection:
            return sqlite3.connect(path, timeout=30, check_same_thread=False)

        connection = _InlineSqliteConnection(connector, iter_chunk_size=64)
        connection._thread.daemon = True
        return await connection

    return connect


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine; for SQLite make sure the folder exists and set pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, async_creator=_sqlite_creator(path))

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy (the "begin" hook below) own transactions, not pysqlite.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN")

        _WRITE_LOCKS[engine.sync_engine] = asyncio.Lock()
        return engine
    return create_async_engine(url, echo=echo, pool_size=20, max_overflow=30)


def write_lock(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[Any]:
    """The in-process writer lock for SQLite; a no-op for PostgreSQL."""
    lock = _WRITE_LOCKS.get(engine.sync_engine)
    return lock if lock is not None else contextlib.nullcontext()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # No autoflush: a step's changes go to the database in one flush at commit (fewer round
    # trips); code that needs a generated id flushes explicitly.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextlib.asynccontextmanager
async def transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with write_lock(factory.kw["bind"]), factory() as session, session.begin():
        yield session


@contextlib.asynccontextmanager
async def write(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A Core connection in a write transaction (the fast paths: inbox, outbox claims)."""
    async with write_lock(engine), engine.begin() as conn:
        yield conn
