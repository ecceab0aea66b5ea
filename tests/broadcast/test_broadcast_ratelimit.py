"""The send limiter with a stepped clock: no test here sleeps."""

from __future__ import annotations

import pytest

from community.ratelimit import (
    POLICIES,
    WINDOW_MARGIN_S,
    Policy,
    RateLimiter,
    Rule,
    SlidingWindow,
    TokenBucket,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += seconds


def sends_now(limiter: RateLimiter, channel: str, target: str, *, bulk: bool = False) -> int:
    """How many sends to ``target`` go through at this instant."""
    count = 0
    while limiter.try_acquire(channel, target, bulk=bulk).wait_s <= 0:
        count += 1
        assert count < 1000
    return count


def test_token_bucket_burst_then_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    for _ in range(3):
        assert bucket.wait(10.0) == 0
        bucket.take(10.0)
    assert bucket.wait(10.0) == pytest.approx(0.5)
    assert bucket.wait(10.5) == 0  # one token back after 1/rate


def test_sliding_window_never_exceeds_count_in_any_window() -> None:
    window = SlidingWindow(count=20, seconds=60)
    for i in range(20):
        assert window.wait(float(i)) == 0
        window.take(float(i))
    # The 21st must wait until the first send has left the window (plus the margin).
    assert window.wait(20.0) == pytest.approx(60 + WINDOW_MARGIN_S - 20)
    assert window.wait(60.0 + WINDOW_MARGIN_S) == 0


def test_telegram_overall_30_per_second() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    sent = 0
    for tick in range(10_000):  # ten seconds, a new chat tried every millisecond
        if limiter.try_acquire("telegram", str(tick)).wait_s <= 0:
            sent += 1
        clock.step(0.001)
    # 30 per second, plus the small burst the bucket starts with.
    assert 300 <= sent <= 303
    assert sends_now(limiter, "telegram", "999999") <= 1
    verdict = limiter.check("telegram", "999999")
    assert verdict.channel_wide and 0 < verdict.wait_s <= 1 / 30 + 1e-9


def test_telegram_per_chat_and_per_group() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert sends_now(limiter, "telegram", "5001") == 2  # a short burst, then 1/s
    verdict = limiter.check("telegram", "5001")
    assert not verdict.channel_wide and verdict.wait_s == pytest.approx(1.0)
    clock.step(0.1)  # the overall bucket refills; 5001 still has to wait
    assert sends_now(limiter, "telegram", "5002") == 2  # other chats are not held up
    assert limiter.check("telegram", "5001").wait_s == pytest.approx(0.9)

    group_sends = 0
    for _ in range(120):  # two minutes, one attempt a second
        group_sends += sends_now(limiter, "telegram", "-100777")
        clock.step(1.0)
    # 20 per minute at most, whatever the per-chat pace allows.
    assert 39 <= group_sends <= 41


def test_robot_limits_per_robot() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert sends_now(limiter, "dingtalk-robot", "robot-a") == 20
    assert sends_now(limiter, "dingtalk-robot", "robot-b") == 20
    assert sends_now(limiter, "wecom-robot", "robot-a") == 20
    clock.step(59.0)
    assert sends_now(limiter, "dingtalk-robot", "robot-a") == 0  # still inside the minute
    clock.step(1.0 + WINDOW_MARGIN_S)
    assert sends_now(limiter, "dingtalk-robot", "robot-a") == 20

    assert sends_now(limiter, "feishu-robot", "bot-1") == 5  # 5/s
    total = 5
    for _ in range(60):
        clock.step(1.0)
        total += sends_now(limiter, "feishu-robot", "bot-1")
    assert total == 100  # and 100/min (+ the margin)


def test_retry_after_pauses_channel_or_destination() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.pause("telegram", "5001", 3)  # a one-to-one chat: the whole bot is flooding
    verdict = limiter.check("telegram", "6001")
    assert verdict.channel_wide and verdict.wait_s == pytest.approx(3)
    clock.step(3.0)
    assert limiter.check("telegram", "6001").wait_s == 0

    limiter.pause("telegram", "-100777", 30)  # a group: only that group waits
    assert limiter.check("telegram", "6002").wait_s == 0
    verdict = limiter.check("telegram", "-100777")
    assert not verdict.channel_wide and verdict.wait_s == pytest.approx(30)

    limiter.pause("wecom-robot", "robot-a", 10)
    assert limiter.check("wecom-robot", "robot-b").wait_s == 0
    assert limiter.check("wecom-robot", "robot-a").wait_s == pytest.approx(10)


def test_waiting_action_message_holds_bulk_back() -> None:
    limiter = RateLimiter(clock=Clock())
    assert limiter.check("telegram", "1", bulk=True).wait_s == 0
    limiter.hold_bulk("telegram", True)
    held = limiter.check("telegram", "1", bulk=True)
    assert held.channel_wide and held.wait_s > 0
    assert limiter.check("telegram", "2").wait_s == 0  # the action lane itself goes
    assert limiter.check("wecom-robot", "r", bulk=True).wait_s == 0  # other channels too
    limiter.hold_bulk("telegram", False)
    assert limiter.check("telegram", "1", bulk=True).wait_s == 0


def test_unlisted_channel_is_unlimited_and_rates_are_known() -> None:
    limiter = RateLimiter(clock=Clock())
    assert all(limiter.try_acquire("generic:bridge", "u1").wait_s == 0 for _ in range(500))
    assert limiter.rate("telegram") == 30
    assert limiter.rate("generic:bridge") == float("inf")
    assert RateLimiter({}).rate("telegram") == float("inf")


def test_idle_destinations_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter({"x": Policy(per_target=(Rule(1, 1, burst=1),))}, clock=clock)
    for chat in range(10_000):
        limiter.take("x", str(chat))
        clock.step(0.001)
    clock.step(5.0)
    for chat in range(10_000, 20_000):
        limiter.take("x", str(chat))
    assert len(limiter._targets) < 15_000  # a 100k broadcast does not keep 100k meters
    assert "telegram" in POLICIES
