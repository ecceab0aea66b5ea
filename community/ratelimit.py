"""Per-channel send limits, checked before every outbox send.

Each platform publishes its own ceilings (shared/spec/platforms.md): Telegram 30 messages/s
overall, about 1/s per chat with short bursts, 20/min per group; WeCom and DingTalk group
robots 20/min per robot (DingTalk mutes an over-eager robot for 10 minutes); Feishu robots
100/min and 5/s. A limit is either a token bucket (steady rate, small burst: used where the
platform itself meters like one) or a sliding window (never more than N in any W seconds:
used where exceeding is punished, so a burst must not borrow from the next window).

The buckets live in the process that sends. Only one process sends the bulk lane (the
scheduler leader, see community/outbox.py), so a broadcast cannot exceed a limit by being
sent from two places; action-lane notices of other processes are few and a 429 they cause
is honoured (``pause``). Sharing buckets through Redis would cost a round trip per message
for that rare case.

The clock is injected, so tests step time instead of sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

# A window is stretched by this much: the platform's clock starts a window when our message
# arrives, a little after we start ours.
WINDOW_MARGIN_S = 0.5
PRUNE_EVERY = 4096  # takes between sweeps of idle per-target meters


class Meter(Protocol):
    def wait(self, now: float) -> float: ...
    def take(self, now: float) -> None: ...
    def idle(self, now: float) -> bool: ...


@dataclass(slots=True)
class TokenBucket:
    """``rate`` sends per second on average, at most ``burst`` at once."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float = field(default=float("-inf"))

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def idle(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


@dataclass(slots=True)
class SlidingWindow:
    """At most ``count`` sends in any ``seconds`` (plus the margin)."""

    count: int
    seconds: float
    sent: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        span = self.seconds + WINDOW_MARGIN_S
        while self.sent and self.sent[0] <= now - span:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.count else self.sent[0] + span - now

    def take(self, now: float) -> None:
        self.sent.append(now)

    def idle(self, now: float) -> bool:
        return self.wait(now) == 0.0 and not self.sent


@dataclass(frozen=True)
class Rule:
    """A limit as written in a platform's docs; ``burst`` given → token bucket."""

    count: int
    seconds: float
    burst: float | None = None

    def meter(self) -> Meter:
        if self.burst is not None:
            return TokenBucket(self.count / self.seconds, self.burst)
        return SlidingWindow(self.count, self.seconds)


def _telegram_group(target: str) -> bool:
    return target.startswith("-")


def _never(target: str) -> bool:
    return False


@dataclass(frozen=True)
class Policy:
    """The limits of one channel: overall, per target, and extra ones for group targets."""

    overall: tuple[Rule, ...] = ()
    per_target: tuple[Rule, ...] = ()
    per_group: tuple[Rule, ...] = ()
    is_group: Callable[[str], bool] = _never
    # A 429 for a one-to-one chat means the whole bot is flooding; for a group or a robot it
    # concerns that destination only.
    flood_is_channel_wide: bool = True


_ROBOT_20_PER_MIN = Policy(per_target=(Rule(20, 60),), flood_is_channel_wide=False)
POLICIES: dict[str, Policy] = {
    # Our burst stays one below the platform's, so network jitter never makes us the 31st.
    "telegram": Policy(
        overall=(Rule(30, 1, burst=3),),
        per_target=(Rule(1, 1, burst=2),),
        per_group=(Rule(20, 60),),
        is_group=_telegram_group,
    ),
    "wecom-robot": _ROBOT_20_PER_MIN,
    "dingtalk-robot": _ROBOT_20_PER_MIN,
    "feishu-robot": Policy(per_target=(Rule(100, 60), Rule(5, 1)), flood_is_channel_wide=False),
    # WeCom app messages: 30/min per member; the excess is dropped silently, so never exceed.
    "wecom": Policy(per_target=(Rule(30, 60),), flood_is_channel_wide=False),
}


class Verdict(NamedTuple):
    """How long until a send may go; ``channel_wide``: the wait concerns every target."""

    wait_s: float
    channel_wide: bool


GO = Verdict(0.0, False)


class RateLimiter:
    """Meters per (channel), (channel, target); the action lane can hold the bulk lane back."""

    def __init__(
        self,
        policies: Mapping[str, Policy] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policies = dict(POLICIES if policies is None else policies)
        self.clock = clock
        self._overall: dict[str, list[Meter]] = {}
        self._targets: dict[tuple[str, str], list[Meter]] = {}
        self._paused: dict[tuple[str, str | None], float] = {}
        self._urgent: dict[str, int] = {}
        self._takes = 0

    def policy(self, channel: str) -> Policy | None:
        return self.policies.get(channel) or self.policies.get(channel.split(":", 1)[0] + ":*")

    def rate(self, channel: str) -> float:
        """The channel's overall ceiling in messages/s (inf: none)."""
        policy = self.policy(channel)
        rules = policy.overall if policy is not None else ()
        return min((r.count / r.seconds for r in rules), default=float("inf"))

    def _meters(self, channel: str, target: str, policy: Policy) -> tuple[list[Meter], list[Meter]]:
        overall = self._overall.get(channel)
        if overall is None:
            overall = self._overall[channel] = [r.meter() for r in policy.overall]
        mine = self._targets.get((channel, target))
        if mine is None:
            rules = policy.per_target + (policy.per_group if policy.is_group(target) else ())
            mine = self._targets[channel, target] = [r.meter() for r in rules]
        return overall, mine

    def check(self, channel: str, target: str, *, bulk: bool = False) -> Verdict:
        """The wait before a send to ``target`` may go (nothing is taken)."""
        now = self.clock()
        if bulk and self._urgent.get(channel):
            return Verdict(0.005, True)  # an action-lane message is waiting for a token
        pause = self._paused.get((channel, None), 0.0) - now
        if pause > 0:
            return Verdict(pause, True)
        policy = self.policy(channel)
        if policy is None:
            return GO
        overall, mine = self._meters(channel, target, policy)
        wait_all = max((m.wait(now) for m in overall), default=0.0)
        wait_one = max((m.wait(now) for m in mine), default=0.0)
        wait_one = max(wait_one, self._paused.get((channel, target), 0.0) - now)
        if wait_one > 0 and wait_one >= wait_all:
            return Verdict(wait_one, False)
        return Verdict(wait_all, True) if wait_all > 0 else GO

    def take(self, channel: str, target: str) -> None:
        policy = self.policy(channel)
        if policy is None:
            return
        now = self.clock()
        overall, mine = self._meters(channel, target, policy)
        for meter in (*overall, *mine):
            meter.take(now)
        self._takes += 1
        if self._takes % PRUNE_EVERY == 0:
            self._prune(now)

    def try_acquire(self, channel: str, target: str, *, bulk: bool = False) -> Verdict:
        """Take a send slot when one is free now; otherwise say how long to wait."""
        verdict = self.check(channel, target, bulk=bulk)
        if verdict.wait_s <= 0:
            self.take(channel, target)
        return verdict

    def pause(self, channel: str, target: str, seconds: float) -> None:
        """Honour a platform's "retry after": nothing goes there until it has passed."""
        policy = self.policy(channel)
        wide = policy is None or (policy.flood_is_channel_wide and not policy.is_group(target))
        key = (channel, None if wide else target)
        self._paused[key] = max(self._paused.get(key, 0.0), self.clock() + seconds)

    def hold_bulk(self, channel: str, waiting: bool) -> None:
        """An action-lane send is (no longer) waiting on ``channel``: bulk sends step aside."""
        count = self._urgent.get(channel, 0) + (1 if waiting else -1)
        self._urgent[channel] = max(0, count)

    def _prune(self, now: float) -> None:
        """Forget per-target meters that are back to full: a 100k broadcast leaves 100k."""
        idle = [k for k, meters in self._targets.items() if all(m.idle(now) for m in meters)]
        for key in idle:
            del self._targets[key]
        for key in [k for k, until in self._paused.items() if until <= now]:
            del self._paused[key]


__all__ = [
    "GO",
    "POLICIES",
    "Policy",
    "RateLimiter",
    "Rule",
    "SlidingWindow",
    "TokenBucket",
    "Verdict",
]
