"""Outbox delivery: claim due rows, pace them per channel, send, record the outcome.

Lanes. Priority below ``BULK_LANE`` is the action lane (routed requests, emergencies, status
changes); ``BULK_LANE`` is the bulk lane (broadcasts). Each lane has its own loop and its
own claims: the action loop never sees bulk rows in its query, and bulk rows are claimed
about a second's worth at a time (30 for Telegram), so a 100,000-recipient broadcast is
never claimed far ahead of being sent. Both lanes share the rate limiter, and an action
message waiting for a send slot holds bulk sends back.

Claims are safe with several processes: one ``UPDATE`` of the rows chosen by ``SELECT …
FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the same single (hence atomic) statement.
A claim is a lease: a row left in ``sending`` by a crashed process returns to ``pending``
after ``lease``. The outcome of each send is committed before its slot takes the next row,
so a kill -9 leaves at most one message per slot sent but unrecorded; it is sent again after
the lease (the one ambiguity a Bot API without idempotency keys allows). A channel's bulk
sends use one slot while a round trip is shorter than 1/rate, more only when the rate needs
them (see ``OutboxWorker``).

Only one process sends the bulk lane (``bulk``: the scheduler leader), so its rate limits
hold without shared buckets; every process may send the action lane (a 429 it causes is
honoured like any other).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from community import clock
from community.broadcasts import hold_for_recipients
from community.notify import BULK_LANE
from community.ratelimit import RateLimiter
from storage.db import transaction, write
from storage.models import Identity, OutboxMessage

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
BULK_BATCH = 200  # most bulk rows claimed at once (≈ 1 s of sending when paced)
MAX_IN_FLIGHT = 16
_T = OutboxMessage.__table__


@dataclass(frozen=True)
class SendResult:
    ok: bool
    gone: bool = False  # the recipient cannot be reached any more (blocked, 410)
    permanent: bool = False  # will never succeed: do not retry
    retry_after_s: float | None = None
    error: str | None = None


Sender = Callable[[OutboxMessage], Awaitable[SendResult]]
# (session, claimed bulk rows, now) → rows to hold: a time to wait for, or None to drop.
Gate = Callable[
    [AsyncSession, Sequence[OutboxMessage], datetime], Awaitable[dict[int, datetime | None]]
]


async def expire_leases(factory: async_sessionmaker[AsyncSession], lease: timedelta = LEASE) -> int:
    """Rows a crashed sender left in ``sending`` become claimable again."""
    async with write(factory.kw["bind"]) as conn:
        result = await conn.execute(
            update(_T)
            .where(_T.c.status == "sending", _T.c.claimed_at < clock.now() - lease)
            .values(status="pending")
        )
        return result.rowcount


_CLAIMED = (_T.c.id, _T.c.channel, _T.c.target, _T.c.text, _T.c.buttons, _T.c.priority)
_CLAIMED += (_T.c.dedupe_key, _T.c.msg_id, _T.c.broadcast_id, _T.c.attempts)
_CLAIMED += (_T.c.next_attempt_at,)


@cache
def _claim_statement(lane: str | None, postgres: bool) -> Any:
    """Built once per lane and backend; the values are bound per call."""
    due = select(_T.c.id).where(
        _T.c.status == "pending",
        _T.c.next_attempt_at <= bindparam("now"),
        _T.c.channel.in_(bindparam("channels", expanding=True)),
    )
    if lane == "action":
        due = due.where(_T.c.priority < BULK_LANE)
    elif lane == "bulk":
        due = due.where(_T.c.priority >= BULK_LANE)
    # (priority, next_attempt_at) is the order of ix_outbox_due: no sort of the whole backlog.
    due = due.order_by(_T.c.priority, _T.c.next_attempt_at).limit(bindparam("limit"))
    claim = update(_T).values(status="sending", claimed_at=bindparam("now")).returning(*_CLAIMED)
    if postgres:
        # A materialized CTE: as ``IN (subquery)`` PostgreSQL may rescan the subquery per
        # row, and with SKIP LOCKED each rescan locks other rows (more than ``limit``).
        chosen = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        return claim.where(_T.c.id == chosen.c.id)
    return claim.where(_T.c.id.in_(due.scalar_subquery()), _T.c.status == "pending")


async def claim_lane(
    factory: async_sessionmaker[AsyncSession],
    channels: Iterable[str],
    *,
    lane: str | None,
    limit: int,
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due rows of ``lane`` ("action", "bulk" or None for both)."""
    channels = sorted(channels)
    if not channels:
        return []
    engine = factory.kw["bind"]
    now = clock.now()
    stmt = _claim_statement(lane, engine.dialect.name == "postgresql")
    async with write(engine) as conn:
        found = await conn.execute(stmt, {"now": now, "channels": channels, "limit": limit})
        rows = [OutboxMessage(**row._mapping, status="sending", claimed_at=now) for row in found]
    rows.sort(key=lambda r: (r.priority, r.next_attempt_at, r.id))
    return rows


async def claim_due(
    factory: async_sessionmaker[AsyncSession], channels: set[str], limit: int = 50
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due rows of the given channels (action lane first)."""
    if not channels:
        return []
    await expire_leases(factory)
    return await claim_lane(factory, channels, lane=None, limit=limit)


_SENT = (
    update(_T)
    .where(_T.c.id.in_(bindparam("ids", expanding=True)))
    .values(status="sent", sent_at=bindparam("now"), attempts=_T.c.attempts + 1, last_error=None)
)


async def record_sent(
    factory: async_sessionmaker[AsyncSession], messages: Sequence[OutboxMessage]
) -> None:
    """The common outcome, on the fast path: one Core UPDATE and one commit for all."""
    async with write(factory.kw["bind"]) as conn:
        await conn.execute(_SENT, {"ids": [m.id for m in messages], "now": clock.now()})


async def record_result(
    factory: async_sessionmaker[AsyncSession], message: OutboxMessage, result: SendResult
) -> None:
    async with transaction(factory) as session:
        row = await session.get(OutboxMessage, message.id, with_for_update=True)
        if row is None:
            return
        row.attempts += 1
        if result.ok:
            row.status, row.sent_at, row.last_error = "sent", clock.now(), None
            return
        row.last_error = (result.error or "")[:500]
        if result.gone:
            row.status = "gone"
            await session.execute(
                update(Identity)
                .where(Identity.channel == row.channel)
                .where((Identity.chat_id == row.target) | (Identity.external_id == row.target))
                .values(reachable=False)
            )
        # Being told to slow down is not a failure of the message: it never uses up attempts.
        elif result.permanent or (row.attempts >= MAX_ATTEMPTS and not result.retry_after_s):
            row.status = "failed"
        else:
            delay = result.retry_after_s or min(3600.0, 2.0**row.attempts)
            row.status = "pending"
            row.next_attempt_at = clock.now() + timedelta(seconds=delay)


async def release(
    factory: async_sessionmaker[AsyncSession],
    holds: dict[int, datetime | None],
    *,
    drop_reason: str = "skipped",
) -> None:
    """Give claimed rows back unsent: due again at the given time, or dropped (None)."""
    if not holds:
        return
    later = [{"rid": k, "due": v} for k, v in holds.items() if v is not None]
    dropped = [k for k, v in holds.items() if v is None]
    async with write(factory.kw["bind"]) as conn:
        if later:
            await conn.execute(
                update(_T)
                .where(_T.c.id == bindparam("rid"), _T.c.status == "sending")
                .values(status="pending", next_attempt_at=bindparam("due")),
                later,
            )
        if dropped:
            await conn.execute(
                update(_T)
                .where(_T.c.id.in_(dropped), _T.c.status == "sending")
                .values(status="cancelled", last_error=drop_reason)
            )


class _SentLog:
    """Group commit of "sent": the sends that finish while one commit runs share the next.

    Each caller still waits for its own commit (its send slot stays taken until then), so
    the crash window stays one message per slot; PostgreSQL's commit waits for the disk
    (about 3 ms here), which a commit per message would pay every time.
    """

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self._waiting: list[tuple[OutboxMessage, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, message: OutboxMessage) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await future

    async def settle(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await record_sent(self.factory, [m for m, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)


class OutboxWorker:
    """Drains the outbox for the channels that have a sender in this process.

    ``bulk`` says whether this process sends the bulk lane: a bool, or a callable asked
    before every bulk batch ("am I the scheduler leader?"). Bulk sends of one channel run
    one at a time while a round trip is shorter than 1/rate (the local fake: ~3 ms against
    Telegram's 33 ms), and in as many slots as the rate needs otherwise (``in_flight``
    fixes the number). Each slot is one message that a kill -9 can leave unrecorded.
    """

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        senders: dict[str, Sender],
        poll_seconds: float = 0.5,
        *,
        limiter: RateLimiter | None = None,
        bulk: bool | Callable[[], bool] = True,
        bulk_batch: int = BULK_BATCH,
        in_flight: int | None = None,
        lease: timedelta = LEASE,
        gate: Gate | None = hold_for_recipients,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.factory = factory
        self.senders = senders
        self.poll_seconds = poll_seconds
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.bulk = bulk
        self.bulk_batch = bulk_batch
        self.in_flight = in_flight
        self.lease = lease
        self.gate = gate
        self.sleep = sleep
        self._wake = asyncio.Event()
        self._bulk_wake: dict[str, asyncio.Event] = {}
        self._expired_at: datetime | None = None
        self._sent = _SentLog(factory)
        self._round_trip: dict[str, float] = {}  # seconds a bulk slot is busy, smoothed

    def wake(self) -> None:
        self._wake.set()
        for event in self._bulk_wake.values():
            event.set()

    def _sender_for(self, channel: str) -> Sender | None:
        if channel in self.senders:
            return self.senders[channel]
        prefix = channel.split(":", 1)[0] + ":*"
        return self.senders.get(prefix)

    def _channels(self) -> set[str]:
        return {c for c in self.senders if not c.endswith(":*")}

    def _bulk_on(self) -> bool:
        return self.bulk() if callable(self.bulk) else self.bulk

    def _slots(self, channel: str) -> int:
        if self.in_flight is not None:
            return max(1, self.in_flight)
        rate = self.limiter.rate(channel)
        if math.isinf(rate):
            return MAX_IN_FLIGHT
        wanted = math.ceil(rate * self._round_trip.get(channel, 0.0) * 1.25)
        return max(1, min(MAX_IN_FLIGHT, wanted))

    def _batch(self, channel: str) -> int:
        rate = self.limiter.rate(channel)  # about a second of sending when paced
        return self.bulk_batch if math.isinf(rate) else max(8, min(self.bulk_batch, int(rate)))

    async def _expire(self, *, force: bool = False) -> None:
        now = clock.now()
        every = min(self.lease / 4, timedelta(seconds=30))
        if force or self._expired_at is None or now - self._expired_at >= every:
            self._expired_at = now
            await expire_leases(self.factory, self.lease)

    async def drain_once(self, limit: int = 50) -> int:
        """One pass over both lanes (tests, and callers that drive the worker by hand)."""
        await self._expire(force=True)
        rows = await claim_lane(self.factory, self._channels(), lane="action", limit=limit)
        for row in rows:
            await self._deliver(row, bulk=False)
        count = len(rows)
        if self._bulk_on():
            for channel in sorted(self._channels()):
                batch = await claim_lane(self.factory, {channel}, lane="bulk", limit=limit)
                await self._send_bulk(channel, batch)
                count += len(batch)
        return count

    async def run(self) -> None:
        loops = [self._loop(None)] + [self._loop(c) for c in sorted(self._channels())]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._sent.settle()  # what was sent before the stop is recorded as sent

    async def _loop(self, bulk_channel: str | None) -> None:
        """The action lane (``bulk_channel`` None) or one channel's bulk lane."""
        event = self._wake if bulk_channel is None else asyncio.Event()
        if bulk_channel is not None:
            self._bulk_wake[bulk_channel] = event
        while True:
            event.clear()  # before the claim: a wake() during it is not lost
            rows: list[OutboxMessage] = []
            try:
                if bulk_channel is None:
                    await self._expire()
                    rows = await claim_lane(self.factory, self._channels(), lane="action", limit=50)
                    for row in rows:
                        await self._deliver(row, bulk=False)
                elif self._bulk_on():
                    limit = self._batch(bulk_channel)
                    rows = await claim_lane(self.factory, {bulk_channel}, lane="bulk", limit=limit)
                    await self._send_bulk(bulk_channel, rows)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed")
            if not rows:
                try:
                    await asyncio.wait_for(event.wait(), timeout=self.poll_seconds)
                except TimeoutError:
                    pass

    async def _send_bulk(self, channel: str, rows: list[OutboxMessage]) -> None:
        if rows and self.gate is not None:
            async with transaction(self.factory) as session:
                holds = await self.gate(session, rows, clock.now())
            await release(self.factory, holds, drop_reason="paused")
            rows = [r for r in rows if r.id not in holds]
        if not rows:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease.total_seconds() / 2
        slots = asyncio.Semaphore(self._slots(channel))
        running: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()

        for index, row in enumerate(rows):
            await slots.acquire()
            # Never hold a claim near its lease: another claimer would take the row too.
            if loop.time() > deadline or not self._bulk_on():
                slots.release()
                await release(self.factory, {r.id: clock.now() for r in rows[index:]})
                break
            task = asyncio.create_task(self._deliver(row, bulk=True))
            running.add(task)
            task.add_done_callback(done)
        if running:
            await asyncio.gather(*running)

    async def _deliver(self, row: OutboxMessage, *, bulk: bool) -> None:
        """Wait for the limiter, send, and commit the outcome (the slot ends only then)."""
        sender = self._sender_for(row.channel)
        if sender is None:
            return
        if not await self._paced(row, bulk=bulk):
            return
        started = time.monotonic()
        try:
            result = await sender(row)
        except Exception as exc:
            log.exception("outbox sender failed")
            result = SendResult(ok=False, error=type(exc).__name__)
        if result.retry_after_s:
            self.limiter.pause(row.channel, row.target, result.retry_after_s)
        if result.ok:
            await self._sent.add(row)
        else:
            await record_result(self.factory, row, result)
        if bulk:
            busy = time.monotonic() - started
            before = self._round_trip.get(row.channel, busy)
            self._round_trip[row.channel] = 0.8 * before + 0.2 * busy

    async def _paced(self, row: OutboxMessage, *, bulk: bool) -> bool:
        """Wait for the limiter; False when the row was put back for later instead."""
        if not bulk:
            self.limiter.hold_bulk(row.channel, True)
        try:
            while True:
                verdict = self.limiter.try_acquire(row.channel, row.target, bulk=bulk)
                if verdict.wait_s <= 0:
                    return True
                # One destination is busy (or the whole channel for long): others go first.
                if not verdict.channel_wide or verdict.wait_s > 1.0:
                    due = clock.now() + timedelta(seconds=verdict.wait_s)
                    await release(self.factory, {row.id: due})
                    return False
                await self.sleep(verdict.wait_s)
        finally:
            if not bulk:
                self.limiter.hold_bulk(row.channel, False)
