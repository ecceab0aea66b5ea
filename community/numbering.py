"""Short human-readable request numbers: R2611-0042 (prefix, yymm, per-month sequence).

A month's counter is one hot row. On PostgreSQL it is incremented in its own short
transaction (like a sequence: a rolled-back request leaves a gap, which is fine), so the
row lock is not held for the whole intake transaction of every concurrent resident.
SQLite writers are serialized anyway, so there it stays in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import Counter


def _increment(dialect_name: str, name: str):  # type: ignore[no-untyped-def]
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    insert = dialect.insert(Counter).values(name=name, value=1)
    return insert.on_conflict_do_update(
        index_elements=["name"], set_={"value": Counter.value + 1}
    ).returning(Counter.value)


async def next_value(session: AsyncSession, name: str) -> int:
    """Atomically increment a named counter and return the new value."""
    bind = session.bind
    if bind.dialect.name == "postgresql":
        engine = bind if not isinstance(bind, AsyncConnection) else bind.engine
        async with engine.begin() as conn:
            return int((await conn.execute(_increment("postgresql", name))).scalar_one())
    return int((await session.execute(_increment(bind.dialect.name, name))).scalar_one())


async def next_request_number(session: AsyncSession, now: datetime, prefix: str = "R") -> str:
    period = now.strftime("%y%m")
    value = await next_value(session, f"req:{period}")
    return f"{prefix}{period}-{value:04d}"


__all__ = ["next_request_number", "next_value"]
