"""Sending broadcasts: lanes, pacing, 429, blocked recipients, leases after a crash, quiet
hours at send time. The clock is frozen (community.clock) and the limiter's clock stepped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from community import clock
from community.broadcasts import (
    Audience,
    BroadcastFanout,
    broadcast_progress,
    cancel_broadcast,
    start_broadcast,
)
from community.notify import ACTION_LANE, BULK_LANE, Reply, Target, enqueue
from community.outbox import LEASE, OutboxWorker, SendResult, claim_lane
from community.ratelimit import RateLimiter
from storage.db import transaction
from storage.models import Identity, NoticePrefs, OutboxMessage
from tests.broadcast.conftest import DAYTIME, add_communities, add_resident, at


class Steps:
    """The limiter's clock; the worker's sleep steps it instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class Sender:
    """Records what was sent; answers from ``script`` (target → results, in order)."""

    def __init__(self, script: dict[str, list[SendResult]] | None = None) -> None:
        self.sent: list[tuple[str, int]] = []
        self.script = script or {}
        self.changed = asyncio.Event()

    async def __call__(self, message: OutboxMessage) -> SendResult:
        answers = self.script.get(message.target)
        result = answers.pop(0) if answers else SendResult(ok=True)
        if result.ok:
            self.sent.append((message.target, message.priority))
            self.changed.set()
        return result

    async def wait_until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    def targets(self) -> list[str]:
        return [target for target, _ in self.sent]


def worker_for(factory, sender: Sender, limiter: RateLimiter | None = None, **kw) -> OutboxWorker:
    steps = Steps()
    return OutboxWorker(
        factory,
        {"telegram": sender},
        limiter=limiter or RateLimiter({}, clock=steps),
        sleep=steps.sleep,
        **kw,
    )


async def broadcast_to(factory, community_id: int, *, at: datetime = DAYTIME) -> int:
    async with transaction(factory) as session:
        broadcast = await start_broadcast(
            session,
            kind="announcement",
            text="周六上午义诊。",
            buttons=[],
            audience=Audience(community_ids=frozenset({community_id})),
            created_by="staff:7",
        )
    await BroadcastFanout(factory, clock=lambda: at).run_once()
    return broadcast.id


async def queue_action(factory, target: str) -> None:
    async with transaction(factory) as session:
        await enqueue(session, Target("telegram", target), Reply("【新诉求】R2605-0001"))


async def rows(factory) -> dict[str, OutboxMessage]:
    async with transaction(factory) as session:
        return {r.target: r for r in await session.scalars(select(OutboxMessage))}


async def test_action_lane_goes_before_bulk_queued_earlier(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(5):
        await add_resident(factory, community_id=home)
    await broadcast_to(factory, home)
    await queue_action(factory, "900")
    sender = Sender()
    with clock.use_clock(DAYTIME + timedelta(seconds=1)):
        assert await worker_for(factory, sender).drain_once() == 6
    assert sender.sent[0] == ("900", ACTION_LANE)
    assert [p for _, p in sender.sent[1:]] == [BULK_LANE] * 5


async def test_action_lane_is_not_held_up_by_a_bulk_send_in_flight(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(3):
        await add_resident(factory, community_id=home)
    broadcast_id = await broadcast_to(factory, home)
    bulk_started, release_bulk = asyncio.Event(), asyncio.Event()
    sender = Sender()

    async def slow_bulk(message: OutboxMessage) -> SendResult:
        if message.priority >= BULK_LANE:
            bulk_started.set()
            await release_bulk.wait()  # e.g. a platform that answers slowly
        return await sender(message)

    worker = OutboxWorker(factory, {"telegram": slow_bulk}, 0.05, limiter=RateLimiter({}))
    with clock.use_clock(DAYTIME + timedelta(seconds=1)):
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(bulk_started.wait(), 10)
            await queue_action(factory, "900")
            worker.wake()
            await sender.wait_until(lambda: "900" in sender.targets())
            assert sender.targets() == ["900"]  # while the bulk send still hangs
            release_bulk.set()
            for _ in range(500):  # the outcomes are committed after the sends return
                async with transaction(factory) as session:
                    progress = await broadcast_progress(session, broadcast_id)
                if progress.sent == 3:
                    break
                await asyncio.sleep(0.02)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert (progress.sent, progress.pending) == (3, 0)
    assert sender.targets()[0] == "900" and len(sender.sent) == 4


async def test_retry_after_is_honoured_and_never_uses_up_attempts(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    _, [identity] = await add_resident(
        factory, community_id=home, identities=(("telegram", "5001"),)
    )
    await broadcast_to(factory, home)
    flood = SendResult(ok=False, retry_after_s=3, error="retry_after")
    sender = Sender({"5001": [flood] * 10})
    steps = Steps()
    limiter = RateLimiter(clock=steps)
    worker = OutboxWorker(factory, {"telegram": sender}, limiter=limiter, sleep=steps.sleep)
    with clock.use_clock(DAYTIME) as frozen:
        await worker.drain_once()
        row = (await rows(factory))["5001"]
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == DAYTIME + timedelta(seconds=3)
        assert limiter.check("telegram", "6001").wait_s == 3  # the bot waits, every chat
        await worker.drain_once()
        assert sender.sent == []  # not due yet: no tight loop
        for _ in range(10):  # ten 429s in a row: still waiting, never failed
            frozen.advance(seconds=3)
            steps.now += 3
            await worker.drain_once()
        row = (await rows(factory))["5001"]
    assert (row.status, row.attempts) == ("sent", 11)
    assert sender.targets() == ["5001"]
    assert identity


async def test_blocked_bot_marks_the_identity_unreachable_and_stops(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    _, [blocked] = await add_resident(
        factory, community_id=home, identities=(("telegram", "5001"),)
    )
    await add_resident(factory, community_id=home, identities=(("telegram", "5002"),))
    broadcast_id = await broadcast_to(factory, home)
    forbidden = SendResult(ok=False, gone=True, error="Forbidden: bot was blocked by the user")
    sender = Sender({"5001": [forbidden]})
    worker = worker_for(factory, sender)
    with clock.use_clock(DAYTIME + timedelta(days=1)):
        await worker.drain_once()
        await worker.drain_once()
        async with transaction(factory) as session:
            identity = await session.get(Identity, blocked)
            progress = await broadcast_progress(session, broadcast_id)
    assert identity is not None and identity.reachable is False
    assert (await rows(factory))["5001"].attempts == 1  # not retried
    assert (progress.sent, progress.gone, progress.pending) == (1, 1, 0)
    # The next broadcast skips them.
    second = await broadcast_to(factory, home)
    async with transaction(factory) as session:
        targets = set(
            await session.scalars(
                select(OutboxMessage.target).where(OutboxMessage.broadcast_id == second)
            )
        )
    assert targets == {"5002"}


async def test_rows_of_a_crashed_sender_are_sent_once_after_the_lease(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(6):
        await add_resident(factory, community_id=home)
    broadcast_id = await broadcast_to(factory, home)
    with clock.use_clock(DAYTIME) as frozen:
        # A sender claims four rows and dies (kill -9) before recording anything.
        claimed = await claim_lane(factory, {"telegram"}, lane="bulk", limit=4)
        sender = Sender()
        restarted = worker_for(factory, sender)
        await restarted.drain_once()
        assert len(sender.sent) == 2  # the leased rows are left alone for now
        frozen.advance(seconds=LEASE.total_seconds() - 1)
        await restarted.drain_once()
        assert len(sender.sent) == 2
        frozen.advance(seconds=2)
        await restarted.drain_once()
        async with transaction(factory) as session:
            progress = await broadcast_progress(session, broadcast_id)
    assert sorted(sender.targets()) == sorted(r.target for r in (await rows(factory)).values())
    assert {r.target for r in claimed} <= set(sender.targets())
    assert len(sender.targets()) == len(set(sender.targets())) == 6
    assert (progress.sent, progress.pending) == (6, 0)


async def test_cancelled_broadcast_rows_left_by_a_crash_are_not_sent(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(3):
        await add_resident(factory, community_id=home)
    broadcast_id = await broadcast_to(factory, home)
    with clock.use_clock(DAYTIME) as frozen:
        await claim_lane(factory, {"telegram"}, lane="bulk", limit=2)  # then a crash
        async with transaction(factory) as session:
            await cancel_broadcast(session, broadcast_id, "staff:7")
        frozen.advance(seconds=LEASE.total_seconds() + 1)
        sender = Sender()
        await worker_for(factory, sender).drain_once()
        async with transaction(factory) as session:
            progress = await broadcast_progress(session, broadcast_id)
    assert sender.sent == []
    assert (progress.cancelled, progress.pending, progress.sent) == (3, 0, 0)


async def test_quiet_hours_and_unsubscribe_are_checked_again_when_sending(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    sleeper, _ = await add_resident(
        factory, community_id=home, quiet=None, identities=(("telegram", "5001"),)
    )
    quitter, _ = await add_resident(factory, community_id=home, identities=(("telegram", "5002"),))
    await add_resident(factory, community_id=home, identities=(("telegram", "5003"),))
    broadcast_id = await broadcast_to(factory, home)  # written at 10:00, all due at once
    async with transaction(factory) as session:
        await session.execute(
            update(NoticePrefs).where(NoticePrefs.user_id == quitter).values(paused=True)
        )
    await queue_action(factory, "5001")  # their request's status change: never held
    sender = Sender()
    evening = at(13, 30)  # 21:30 in Shanghai
    with clock.use_clock(evening):
        await worker_for(factory, sender).drain_once()
        async with transaction(factory) as session:
            progress = await broadcast_progress(session, broadcast_id)
            held = await session.scalar(
                select(OutboxMessage).where(
                    OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.target == "5001"
                )
            )
    assert sender.sent == [("5001", ACTION_LANE), ("5003", BULK_LANE)]
    assert held is not None and held.status == "pending" and held.attempts == 0
    assert held.next_attempt_at == at(0, days=1)  # 08:00
    assert (progress.sent, progress.pending, progress.cancelled) == (1, 1, 1)
    assert sleeper


async def test_a_busy_chat_waits_without_holding_up_others(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(3):  # three residents whose notices go to one group chat
        await add_resident(factory, community_id=home, identities=(("telegram", "-100777"),))
    await add_resident(factory, community_id=home, identities=(("telegram", "5001"),))
    await broadcast_to(factory, home)
    steps = Steps()
    sender = Sender()
    worker = OutboxWorker(
        factory, {"telegram": sender}, limiter=RateLimiter(clock=steps), sleep=steps.sleep
    )
    with clock.use_clock(DAYTIME) as frozen:
        await worker.drain_once()
        assert sorted(sender.targets()) == ["-100777", "-100777", "5001"]  # a burst of two
        async with transaction(factory) as session:
            [waiting] = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.status == "pending")
            )
        assert waiting.target == "-100777" and waiting.attempts == 0
        assert DAYTIME < waiting.next_attempt_at <= DAYTIME + timedelta(seconds=1)
        frozen.advance(seconds=1)
        steps.now += 1
        await worker.drain_once()
    assert sender.targets().count("-100777") == 3


async def test_concurrent_claims_are_disjoint_and_bounded(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(30):
        await add_resident(factory, community_id=home)
    await broadcast_to(factory, home)
    with clock.use_clock(DAYTIME):
        batches = await asyncio.gather(
            *(claim_lane(factory, {"telegram"}, lane="bulk", limit=5) for _ in range(4))
        )
    assert [len(b) for b in batches] == [5, 5, 5, 5]
    ids = [row.id for batch in batches for row in batch]
    assert len(set(ids)) == 20
