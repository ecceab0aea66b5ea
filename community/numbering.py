"""Short human-readable request numbers: R2611-0042 (prefix, yymm, per-month sequence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Counter


async def next_value(session: AsyncSession, name: str) -> int:
    """Atomically increment a named counter inside the caller's transaction."""
    result = await session.execute(
        update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        # First use this period. A concurrent first use hits the primary key; then increment.
        try:
            async with session.begin_nested():
                session.add(Counter(name=name, value=1))
            return 1
        except IntegrityError:
            await session.execute(
                update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
            )
    value = await session.scalar(select(Counter.value).where(Counter.name == name))
    return int(value or 0)


async def next_request_number(session: AsyncSession, now: datetime, prefix: str = "R") -> str:
    period = now.strftime("%y%m")
    value = await next_value(session, f"req:{period}")
    return f"{prefix}{period}-{value:04d}"
