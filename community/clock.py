"""The one clock the activity rules, reminders and leases read, replaceable in tests.

The override is a module-level value rather than a contextvar on purpose: scheduler jobs and
other background tasks run in tasks created before a test sets its clock, and a contextvar
set later would not reach them. Tests are one process, so a global is exactly as wide as
needed. Production never sets it.

Quiet hours, "this week" and the times shown to residents are local (China Standard Time);
the database stores UTC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_override: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time, aware, in UTC."""
    if _override is not None:
        return _override().astimezone(UTC)
    return datetime.now(UTC)


def local(moment: datetime) -> datetime:
    """``moment`` in local time (for quiet hours, week boundaries and texts)."""
    return moment.astimezone(LOCAL_TZ)


class FrozenClock:
    """A clock that only moves when told to: ``advance(hours=25)`` or ``set(moment)``."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current = self.current + timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.current = moment
        return self.current


@contextlib.contextmanager
def use_clock(clock: FrozenClock | datetime) -> Iterator[FrozenClock]:
    """Replace ``now()`` inside the block; restores the previous clock even on error."""
    global _override
    frozen = clock if isinstance(clock, FrozenClock) else FrozenClock(clock)
    previous = _override
    _override = frozen
    try:
        yield frozen
    finally:
        _override = previous


__all__ = ["LOCAL_TZ", "FrozenClock", "local", "now", "use_clock"]
