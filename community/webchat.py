"""The web chat transcript: what the resident typed and what the bot (or a notice) said."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from community.notify import Reply
from community.residents import get_or_create_identity
from storage.models import Identity, WebMessage

CHANNEL = "web"


async def web_identity(session: AsyncSession, visitor_id: str) -> Identity:
    return await get_or_create_identity(session, CHANNEL, visitor_id)


async def record_incoming(
    session: AsyncSession, identity_id: int, text: str, client_msg_id: str | None
) -> WebMessage | None:
    """Store the resident's message; None when this client_msg_id was stored before."""
    message = WebMessage(
        identity_id=identity_id, direction="in", text=text, client_msg_id=client_msg_id
    )
    try:
        async with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None
    return message


async def find_incoming(
    session: AsyncSession, identity_id: int, client_msg_id: str
) -> WebMessage | None:
    return await session.scalar(
        select(WebMessage).where(
            WebMessage.identity_id == identity_id, WebMessage.client_msg_id == client_msg_id
        )
    )


def record_replies(session: AsyncSession, identity_id: int, replies: Sequence[Reply]) -> None:
    for reply in replies:
        session.add(
            WebMessage(
                identity_id=identity_id,
                direction="out",
                text=reply.text,
                buttons=[b.as_dict() for b in reply.buttons],
            )
        )


async def messages_after(
    session: AsyncSession,
    identity_id: int,
    after: int,
    *,
    outgoing_only: bool = False,
    limit: int = 100,
) -> list[WebMessage]:
    stmt = (
        select(WebMessage)
        .where(WebMessage.identity_id == identity_id, WebMessage.id > after)
        .order_by(WebMessage.id)
        .limit(limit)
    )
    if outgoing_only:
        stmt = stmt.where(WebMessage.direction == "out")
    return list(await session.scalars(stmt))


async def history(session: AsyncSession, identity_id: int, limit: int = 60) -> list[WebMessage]:
    rows = list(
        await session.scalars(
            select(WebMessage)
            .where(WebMessage.identity_id == identity_id)
            .order_by(WebMessage.id.desc())
            .limit(limit)
        )
    )
    return rows[::-1]


def as_json(message: WebMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "from": "user" if message.direction == "in" else "bot",
        "text": message.text,
        "buttons": message.buttons or [],
        "at": message.created_at.isoformat(),
    }
