"""Notices to people, written in the same transaction as the change they announce.

A notice is never sent from inside a transaction: it becomes an outbox row (or, for the
web chat, a transcript row the page polls), and the outbox sender delivers it after the
commit. So a rollback sends nothing and a crash after the commit still sends.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DialogState, Identity, OutboxMessage, WebMessage, utcnow

ACTION_LANE = 0  # routed requests, emergencies, status changes
BULK_LANE = 10  # broadcasts
# Channels that show buttons as numbered text (「回复 1」): a notice's options become the
# answers a bare number picks, as if the notice were the last question of the dialog.
NUMBERED_CHANNELS = frozenset({"wecom", "wechat", "dingtalk", "feishu"})


@dataclass(frozen=True)
class Button:
    text: str
    payload: str

    def as_dict(self) -> dict[str, str]:
        return {"text": self.text, "payload": self.payload}


@dataclass(frozen=True)
class Reply:
    """A platform-neutral message: text plus optional buttons."""

    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    # The next message should be free text (Telegram groups render a ForceReply for it).
    expects_text: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "buttons": [b.as_dict() for b in self.buttons]}


@dataclass(frozen=True)
class Target:
    """Where a notice goes: a channel and the address on it."""

    channel: str
    address: str


def parse_notify(spec: str | None) -> Target | None:
    """Parse an organization's ``notify`` column (interfaces.md §1) into a target.

    ``telegram:<chat>`` and ``generic:<channel>:<user>`` are delivered here; robot targets
    (``wecom-robot:``, ``dingtalk-robot:``, ``feishu-robot:``) are kept verbatim for the
    platform senders. Empty or unknown → None (the dashboard inbox is the only channel).
    """
    if not spec:
        return None
    kind, _, rest = spec.strip().partition(":")
    if not rest:
        return None
    if kind == "telegram":
        return Target("telegram", rest)
    if kind == "generic":
        channel, _, user = rest.partition(":")
        return Target(f"generic:{channel}", user) if channel and user else None
    if kind in {"wecom-robot", "dingtalk-robot", "feishu-robot"}:
        return Target(kind, rest)
    return None


def is_valid_notify(spec: str) -> bool:
    return spec == "" or parse_notify(spec) is not None


async def enqueue(
    session: AsyncSession,
    target: Target,
    reply: Reply,
    *,
    dedupe_key: str | None = None,
    priority: int = ACTION_LANE,
) -> None:
    """Queue one message for one target, at most once per ``dedupe_key``.

    One INSERT … ON CONFLICT DO NOTHING: a repeated key is skipped by the database itself,
    without a look-up first and without aborting the surrounding transaction.
    """
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(OutboxMessage).values(
        channel=target.channel,
        target=target.address,
        text=reply.text,
        buttons=[b.as_dict() for b in reply.buttons],
        priority=priority,
        dedupe_key=dedupe_key,
        msg_id="msg_" + secrets.token_urlsafe(16),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]))


async def notify_identity(
    session: AsyncSession, identity: Identity, reply: Reply, *, dedupe_key: str | None = None
) -> None:
    """Tell one resident something on the channel they use."""
    if identity.channel == "web":
        session.add(
            WebMessage(
                identity_id=identity.id,
                direction="out",
                text=reply.text,
                buttons=[b.as_dict() for b in reply.buttons],
            )
        )
        return
    if not identity.reachable:
        return
    address = identity.chat_id or identity.external_id
    await enqueue(session, Target(identity.channel, address), reply, dedupe_key=dedupe_key)
    if identity.channel in NUMBERED_CHANNELS and reply.buttons:
        await _remember_numbered_options(session, identity.id, reply)


async def _remember_numbered_options(session: AsyncSession, identity_id: int, reply: Reply) -> None:
    payloads = [b.payload for b in reply.buttons]
    state = await session.get(DialogState, identity_id)
    if state is None:
        session.add(DialogState(identity_id=identity_id, state="menu", data={"btns": payloads}))
    else:
        state.data = {**(state.data or {}), "btns": payloads}


async def notify_user(
    session: AsyncSession,
    user_id: int,
    reply: Reply,
    *,
    prefer_channel: str | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Tell a resident on the channel they wrote from (or any channel they still use)."""
    identities = list(
        await session.scalars(
            select(Identity).where(Identity.user_id == user_id).order_by(Identity.id)
        )
    )
    if not identities:
        return
    chosen = next((i for i in identities if i.channel == prefer_channel), None)
    chosen = chosen or next((i for i in identities if i.reachable), identities[0])
    await notify_identity(session, chosen, reply, dedupe_key=dedupe_key)


async def notify_target_spec(
    session: AsyncSession, spec: str | None, reply: Reply, *, dedupe_key: str | None = None
) -> bool:
    """Send to an organization's or a duty desk's notify target; False when there is none."""
    target = parse_notify(spec)
    if target is None:
        return False
    await enqueue(session, target, reply, dedupe_key=dedupe_key)
    return True
