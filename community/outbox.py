"""Outbox delivery: claim due rows, hand them to the channel's sender, record the outcome.

Claims are safe with several processes: PostgreSQL uses ``FOR UPDATE SKIP LOCKED``;
SQLite serializes writers (BEGIN IMMEDIATE), so a conditional UPDATE is enough. A claim
is a lease: a row stuck in ``sending`` after a crash returns to ``pending`` later.
The action lane (priority 0) is always claimed before bulk rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import transaction
from storage.models import Identity, OutboxMessage, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class SendResult:
    ok: bool
    gone: bool = False  # the recipient cannot be reached any more (blocked, 410)
    permanent: bool = False  # will never succeed: do not retry
    retry_after_s: float | None = None
    error: str | None = None


Sender = Callable[[OutboxMessage], Awaitable[SendResult]]


async def claim_due(
    factory: async_sessionmaker[AsyncSession], channels: set[str], limit: int = 50
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due rows of the given channels (action lane first)."""
    if not channels:
        return []
    now = utcnow()
    async with transaction(factory) as session:
        # Leases of crashed senders expire.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - LEASE)
            .values(status="pending")
        )
        stmt = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.channel.in_(channels),
            )
            .order_by(OutboxMessage.priority, OutboxMessage.id)
            .limit(limit)
        )
        if session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(await session.scalars(stmt))
        for row in rows:
            row.status = "sending"
            row.claimed_at = now
        return rows


async def record_result(
    factory: async_sessionmaker[AsyncSession], message: OutboxMessage, result: SendResult
) -> None:
    async with transaction(factory) as session:
        row = await session.get(OutboxMessage, message.id, with_for_update=True)
        if row is None:
            return
        row.attempts += 1
        if result.ok:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), None
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
        elif result.permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
        else:
            delay = result.retry_after_s or min(3600.0, 2.0**row.attempts)
            row.status = "pending"
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)


class OutboxWorker:
    """Drains the outbox for the channels that have a sender in this process."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        senders: dict[str, Sender],
        poll_seconds: float = 0.5,
    ) -> None:
        self.factory = factory
        self.senders = senders
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def _sender_for(self, channel: str) -> Sender | None:
        if channel in self.senders:
            return self.senders[channel]
        prefix = channel.split(":", 1)[0] + ":*"
        return self.senders.get(prefix)

    def _channels(self) -> set[str]:
        return {c for c in self.senders if not c.endswith(":*")}

    async def drain_once(self, limit: int = 50) -> int:
        rows = await claim_due(self.factory, self._channels(), limit)
        for row in rows:
            sender = self._sender_for(row.channel)
            if sender is None:
                continue
            try:
                result = await sender(row)
            except Exception as exc:
                log.exception("outbox sender failed")
                result = SendResult(ok=False, error=type(exc).__name__)
            await record_result(self.factory, row, result)
        return len(rows)

    async def run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox drain failed")
                sent = 0
            if sent:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
