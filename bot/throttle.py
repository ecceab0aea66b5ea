"""Per-person throttling: a small token bucket per (channel, person), in process memory.

It protects the classifier and the database from a stuck client or a flood; legitimate
residents never come close (the default allows a burst of 10 and 30 messages a minute).
"""

from __future__ import annotations

import time
from collections import OrderedDict


class Throttle:
    def __init__(self, per_minute: int, burst: int = 10, max_keys: int = 50_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(burst, 1))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed
