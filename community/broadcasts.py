"""Broadcasts: one notice to many residents, delivered through the outbox.

``start_broadcast`` records what and to whom, in the caller's transaction. After the commit
``BroadcastFanout`` expands it a chunk of recipients per transaction: one outbox row per
(broadcast, recipient) under the unique key ``bc:<broadcast>:<user>`` (INSERT … ON CONFLICT
DO NOTHING), and the chunk's last user id goes to ``fanout_cursor`` in the same
transaction. A crash between chunks resumes after the cursor; a chunk written twice adds
nothing. Sending starts with the first chunk.

Where a notice goes: the recipient's most recently created reachable identity (the channel
they came to last is the one they use now). A web-chat identity gets its transcript row at
once (the page shows it on its next poll; nothing rings, so quiet hours do not apply) plus
an outbox row already marked sent, so progress counts every recipient in one place.
Residents who paused notices (退订), were deleted, or have no reachable identity are skipped.

When: a notice due inside the resident's quiet hours (NoticePrefs, local time, default
21:00–08:00) is due at their end. This is checked at fan-out and again when the sender picks
the row up (``hold_for_recipients``): a 55-minute broadcast may cross 21:00, and a resident
may say 退订 meanwhile. Only the bulk lane waits; action-lane notices never do.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, false, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from community.audit import Actor, record_audit
from community.catalog import t
from community.clock import now as clock_now
from community.errors import DomainError, NotFound
from community.interests import DEFAULT_QUIET_END, DEFAULT_QUIET_START, Interests, quiet_until
from community.notify import BULK_LANE, Button
from storage.db import transaction
from storage.models import (
    Broadcast,
    Identity,
    NoticePrefs,
    OutboxMessage,
    Subscription,
    User,
    WebMessage,
)

log = logging.getLogger(__name__)
KINDS = ("activity_published", "activity_changed", "activity_cancelled", "announcement")
_OUT = OutboxMessage.__table__
_WEB = WebMessage.__table__


@dataclass(frozen=True)
class Audience:
    """Who gets it: subscribers of a category × community, or an explicit list of users."""

    categories: frozenset[str] = frozenset()  # subscribed to one of these categories …
    # … and the community is theirs (users.community_id) or one they subscribed to
    community_ids: frozenset[int] = frozenset()
    user_ids: frozenset[int] | None = None  # explicit recipients instead (e.g. signed up)

    def as_json(self) -> dict[str, Any]:
        return {
            "categories": sorted(self.categories),
            "community_ids": sorted(self.community_ids),
            "user_ids": None if self.user_ids is None else sorted(self.user_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        users = data.get("user_ids")
        return cls(
            frozenset(data.get("categories") or ()),
            frozenset(int(c) for c in data.get("community_ids") or ()),
            None if users is None else frozenset(int(u) for u in users),
        )


@dataclass(frozen=True)
class BroadcastProgress:
    broadcast_id: int
    status: str  # planning | sending | done | cancelled
    total: int  # recipients written so far (final once status is past planning)
    sent: int
    pending: int  # waiting or being sent (quiet hours included)
    failed: int
    gone: int  # the recipient blocked the bot or left
    cancelled: int = 0  # dropped: broadcast cancelled, or the resident said 退订 meanwhile

    @property
    def finished(self) -> bool:
        return self.status in ("done", "cancelled") or (
            self.status == "sending" and self.pending == 0
        )


def _actor(label: str) -> Actor:
    kind, _, ident = label.partition(":")
    return Actor(kind, ident or None)


async def start_broadcast(
    session: AsyncSession,
    *,
    kind: str,
    text: str,
    buttons: Sequence[Button],
    audience: Audience,
    created_by: str,
    activity_id: int | None = None,
    community_id: int | None = None,
) -> Broadcast:
    """Record a broadcast (status planning); the fan-out runs after the caller commits."""
    if kind not in KINDS:
        raise DomainError("broadcast.error.unknown_kind", kind=kind)
    if not text.strip():
        raise DomainError("broadcast.error.empty_text")
    if audience.user_ids is None and not (audience.categories or audience.community_ids):
        raise DomainError("broadcast.error.no_audience")  # never "everyone" by accident
    broadcast = Broadcast(
        kind=kind,
        activity_id=activity_id,
        community_id=community_id,
        text=text,
        buttons=[b.as_dict() for b in buttons],
        audience=audience.as_json(),
        status="planning",
        total=0,
        fanout_cursor=0,
        created_by=created_by,
        created_at=clock_now(),
    )
    session.add(broadcast)
    await session.flush()
    record_audit(
        session,
        _actor(created_by),
        "broadcast.start",
        f"broadcast:{broadcast.id}",
        {"kind": kind, "activity_id": activity_id, "audience": _audience_summary(audience)},
    )
    return broadcast


def _audience_summary(audience: Audience) -> dict[str, Any]:
    summary = audience.as_json()
    if audience.user_ids is not None:
        summary["user_ids"] = len(audience.user_ids)  # a count in the audit, not the list
    return summary


async def broadcast_progress(session: AsyncSession, broadcast_id: int) -> BroadcastProgress:
    """Counts for the dashboard and ``linli broadcast status``."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound("broadcast.error.not_found", id=broadcast_id)
    rows = await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.broadcast_id == broadcast_id)
        .group_by(OutboxMessage.status)
    )
    counts: dict[str, int] = {status: n for status, n in rows.all()}
    return BroadcastProgress(
        broadcast_id=broadcast_id,
        status=broadcast.status,
        total=broadcast.total,
        sent=counts.get("sent", 0),
        pending=counts.get("pending", 0) + counts.get("sending", 0),
        failed=counts.get("failed", 0),
        gone=counts.get("gone", 0),
        cancelled=counts.get("cancelled", 0),
    )


async def list_broadcasts(session: AsyncSession, limit: int = 20) -> list[Broadcast]:
    return list(await session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)))


async def cancel_broadcast(session: AsyncSession, broadcast_id: int, actor: str) -> None:
    """Stop a broadcast: rows not yet sent are dropped (the one being sent may still go)."""
    broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None:
        raise NotFound("broadcast.error.not_found", id=broadcast_id)
    if broadcast.status == "cancelled":
        return
    if broadcast.status == "done":
        raise DomainError("broadcast.error.finished", id=broadcast_id)
    broadcast.status, broadcast.finished_at = "cancelled", clock_now()
    dropped = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status == "pending")
        .values(status="cancelled", last_error="cancelled")
    )
    record_audit(
        session,
        _actor(actor),
        "broadcast.cancel",
        f"broadcast:{broadcast_id}",
        {"dropped": dropped.rowcount},
    )


def _quiet_release(start: int | None, end: int | None, now: datetime) -> datetime | None:
    prefs = Interests(
        categories=frozenset(),
        community_ids=frozenset(),
        quiet_start=DEFAULT_QUIET_START if start is None else start,
        quiet_end=DEFAULT_QUIET_END if end is None else end,
    )
    return quiet_until(prefs, now)


def _user_of(dedupe_key: str | None) -> int | None:
    parts = (dedupe_key or "").split(":")
    return int(parts[2]) if len(parts) == 3 and parts[0] == "bc" and parts[2].isdigit() else None


async def hold_for_recipients(
    session: AsyncSession, rows: Sequence[OutboxMessage], now: datetime
) -> dict[int, datetime | None]:
    """Of claimed bulk rows, those to wait (until the end of quiet hours) or drop (None)."""
    users: dict[int, list[int]] = {}
    for row in rows:
        user_id = _user_of(row.dedupe_key)
        if user_id is not None:
            users.setdefault(user_id, []).append(row.id)
    holds: dict[int, datetime | None] = {}
    broadcast_ids = {row.broadcast_id for row in rows if row.broadcast_id is not None}
    if broadcast_ids:
        stopped = set(
            await session.scalars(
                select(Broadcast.id).where(
                    Broadcast.id.in_(broadcast_ids), Broadcast.status == "cancelled"
                )
            )
        )
        holds.update({row.id: None for row in rows if row.broadcast_id in stopped})
    if not users:
        return holds
    found = await session.execute(
        select(
            User.id,
            User.deleted_at,
            NoticePrefs.quiet_start,
            NoticePrefs.quiet_end,
            NoticePrefs.paused,
        )
        .outerjoin(NoticePrefs, NoticePrefs.user_id == User.id)
        .where(User.id.in_(users))
    )
    missing = set(users)
    for user_id, deleted_at, start, end, paused in found.all():
        missing.discard(user_id)
        if deleted_at is not None or paused:
            hold: datetime | None = None
        elif (release := _quiet_release(start, end, now)) is not None:
            hold = release
        else:
            continue
        for row_id in users[user_id]:
            holds.setdefault(row_id, hold)
    for user_id in missing:  # the account is gone
        holds.update({row_id: None for row_id in users[user_id]})
    return holds


def _audience_filter(audience: Audience) -> Any:
    conditions = []
    if audience.categories:
        conditions.append(
            exists().where(
                Subscription.user_id == User.id,
                Subscription.scope == "category",
                Subscription.value.in_(sorted(audience.categories)),
            )
        )
    if audience.community_ids:
        mine = aliased(Subscription)
        conditions.append(
            or_(
                User.community_id.in_(sorted(audience.community_ids)),
                exists().where(
                    mine.user_id == User.id,
                    mine.scope == "community",
                    mine.value.in_([str(c) for c in sorted(audience.community_ids)]),
                ),
            )
        )
    return and_(true(), *conditions)


def _recipients_query(condition: Any, cursor: int, limit: int) -> Any:
    """Next users after ``cursor`` with their chosen identity's address and quiet hours."""
    other = aliased(Identity)
    latest = (
        select(other.id)
        .where(other.user_id == User.id, other.reachable.is_(True))
        .order_by(other.created_at.desc(), other.id.desc())
        .limit(1)
        .correlate(User)
        .scalar_subquery()
    )
    return (
        select(
            User.id,
            Identity.id,
            Identity.channel,
            func.coalesce(Identity.chat_id, Identity.external_id),
            NoticePrefs.quiet_start,
            NoticePrefs.quiet_end,
        )
        .select_from(User)
        .join(Identity, Identity.id == latest)
        .outerjoin(NoticePrefs, NoticePrefs.user_id == User.id)
        .where(
            User.id > cursor,
            User.deleted_at.is_(None),
            or_(NoticePrefs.paused.is_(None), NoticePrefs.paused.is_(False)),
            condition,
        )
        .order_by(User.id)
        .limit(limit)
    )


async def _fan_out_chunk(
    session: AsyncSession, broadcast: Broadcast, chunk: int, now: datetime
) -> tuple[int, int, bool]:
    """Write the next chunk's rows; return (rows written, new cursor, fan-out finished)."""
    audience = Audience.from_json(broadcast.audience)
    cursor = broadcast.fanout_cursor
    window: list[int] | None = None
    if audience.user_ids is not None:
        # Explicit ids advance by the window, not by who was found: a window of residents
        # who all paused must not look like the end.
        window = sorted(u for u in audience.user_ids if u > cursor)[:chunk]
        condition = User.id.in_(window) if window else false()
    else:
        condition = _audience_filter(audience)
    found = (await session.execute(_recipients_query(condition, cursor, chunk))).all()
    seen = window if window is not None else [row[0] for row in found]
    new_cursor, finished = (seen[-1] if seen else cursor), len(seen) < chunk
    text, buttons = broadcast.text, list(broadcast.buttons or [])
    if audience.user_ids is None:  # subscribers: say how to stop (退订)
        text = f"{text}\n\n{t('broadcast.footer')}"
    rows, web = [], {}
    for user_id, identity_id, channel, address, quiet_start, quiet_end in found:
        key = f"bc:{broadcast.id}:{user_id}"
        on_web = channel == "web"
        due = None if on_web else _quiet_release(quiet_start, quiet_end, now)
        if on_web:
            web[key] = identity_id
        rows.append(
            {
                "channel": channel,
                "target": str(identity_id) if on_web else address,
                "text": text,
                "buttons": buttons,
                "priority": BULK_LANE,
                "dedupe_key": key,
                "msg_id": "msg_" + secrets.token_urlsafe(16),
                "broadcast_id": broadcast.id,
                "status": "sent" if on_web else "pending",
                "attempts": 1 if on_web else 0,
                "next_attempt_at": due or now,
                "created_at": now,
                "sent_at": now if on_web else None,
            }
        )
    if not rows:
        return 0, new_cursor, finished
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    insert_rows = (
        dialect.insert(_OUT)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_OUT.c.dedupe_key)
    )
    written = set((await session.execute(insert_rows, rows)).scalars())
    transcript = [
        {
            "identity_id": web[key],
            "direction": "out",
            "text": text,
            "buttons": buttons,
            "client_msg_id": f"bc:{broadcast.id}",
            "created_at": now,
        }
        for key in sorted(written & web.keys())
    ]
    if transcript:
        await session.execute(
            dialect.insert(_WEB).on_conflict_do_nothing(
                index_elements=["identity_id", "client_msg_id"]
            ),
            transcript,
        )
    return len(written), new_cursor, finished


class BroadcastFanout:
    """Expands planning broadcasts into outbox rows, chunk by chunk, then wakes the outbox.

    Runs in the one process that runs the scheduler. ``on_progress(broadcast_id, total)``
    is called after each committed chunk; an exception there stops the run like a crash
    would (the next run resumes after the cursor).
    """

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        chunk: int = 1000,
        on_progress: Callable[[int, int], None] | None = None,
        wake_outbox: Callable[[], None] | None = None,
        poll_seconds: float = 2.0,
        clock: Callable[[], datetime] = clock_now,
    ) -> None:
        self.factory = factory
        self.chunk = chunk
        self.on_progress = on_progress
        self.wake_outbox = wake_outbox
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Fan out every planning broadcast completely; mark finished ones done."""
        written = 0
        async with transaction(self.factory) as session:
            planning = list(
                await session.scalars(
                    select(Broadcast.id)
                    .where(Broadcast.status == "planning")
                    .order_by(Broadcast.id)
                )
            )
        for broadcast_id in planning:
            while (step := await self._chunk(broadcast_id)) is not None:
                rows, total, finished = step
                written += rows
                if rows and self.wake_outbox is not None:
                    self.wake_outbox()
                if self.on_progress is not None:
                    self.on_progress(broadcast_id, total)
                if finished:
                    break
        await self._finish_delivered()
        return written

    async def _chunk(self, broadcast_id: int) -> tuple[int, int, bool] | None:
        now = self.clock()
        async with transaction(self.factory) as session:
            # The row lock makes a second fan-out (a stale leader) wait, then see the cursor.
            broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
            if broadcast is None or broadcast.status != "planning":
                return None
            broadcast.started_at = broadcast.started_at or now
            rows, cursor, finished = await _fan_out_chunk(session, broadcast, self.chunk, now)
            broadcast.fanout_cursor = cursor
            broadcast.total += rows
            if finished:
                broadcast.status = "sending"
            return rows, broadcast.total, finished

    async def _finish_delivered(self) -> None:
        """A sending broadcast with nothing left to send (or wait for) is done."""
        async with transaction(self.factory) as session:
            sending = list(
                await session.scalars(select(Broadcast).where(Broadcast.status == "sending"))
            )
            for broadcast in sending:
                busy = await session.scalar(
                    select(OutboxMessage.id)
                    .where(
                        OutboxMessage.broadcast_id == broadcast.id,
                        OutboxMessage.status.in_(("pending", "sending")),
                    )
                    .limit(1)
                )
                if busy is None:
                    broadcast.status, broadcast.finished_at = "done", self.clock()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast fan-out failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
