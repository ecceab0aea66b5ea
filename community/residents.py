"""Residents and their channel identities, consent and home community."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor, record_audit
from storage.models import (
    Community,
    Consent,
    DialogState,
    Identity,
    Request,
    Street,
    User,
    utcnow,
)

PRIVACY_VERSION = "2026-11"


async def get_or_create_identity(
    session: AsyncSession,
    channel: str,
    external_id: str,
    *,
    chat_id: str | None = None,
    display_name: str | None = None,
) -> Identity:
    """The identity for (channel, external id), creating a new resident on first contact."""
    identity = await session.scalar(
        select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
    )
    if identity is not None:
        if chat_id and identity.chat_id != chat_id:
            identity.chat_id = chat_id
        if not identity.reachable:
            identity.reachable = True  # they wrote again (unblocked, followed again)
        return identity
    try:
        async with session.begin_nested():
            user = User(display_name=(display_name or "")[:64] or None)
            session.add(user)
            await session.flush()
            identity = Identity(
                user_id=user.id, channel=channel, external_id=external_id, chat_id=chat_id
            )
            session.add(identity)
    except IntegrityError:
        # A concurrent first message from the same person created it: use theirs.
        identity = await session.scalar(
            select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
        )
        assert identity is not None
    return identity


_CONVERSATION = (  # built once; only the values change per message
    select(Identity, User, DialogState)
    .join(User, User.id == Identity.user_id)
    .outerjoin(DialogState, DialogState.identity_id == Identity.id)
    .where(
        Identity.channel == bindparam("channel"),
        Identity.external_id == bindparam("external_id"),
    )
)


async def load_conversation(
    session: AsyncSession,
    channel: str,
    external_id: str,
    *,
    chat_id: str | None = None,
    display_name: str | None = None,
) -> tuple[Identity, User, DialogState]:
    """Identity, resident and dialog state in one query (the hot path of every message)."""
    params = {"channel": channel, "external_id": external_id}
    row = (await session.execute(_CONVERSATION, params)).first()
    if row is not None:
        identity, user, state = row
        if chat_id and identity.chat_id != chat_id:
            identity.chat_id = chat_id
        if not identity.reachable:
            identity.reachable = True  # they wrote again (unblocked, followed again)
    else:
        identity = await get_or_create_identity(
            session, channel, external_id, chat_id=chat_id, display_name=display_name
        )
        found = await session.get(User, identity.user_id)
        assert found is not None
        user, state = found, await session.get(DialogState, identity.id)
    if state is None:
        state = DialogState(identity_id=identity.id, state="new", data={})
        session.add(state)
    return identity, user, state


async def give_consent(session: AsyncSession, user: User, channel: str) -> None:
    if user.consented_at is not None:
        return
    user.consented_at = utcnow()
    session.add(Consent(user_id=user.id, kind="privacy", version=PRIVACY_VERSION, channel=channel))
    record_audit(session, Actor("resident", str(user.id)), "consent", f"user:{user.id}")


SENSITIVE_CATEGORIES = frozenset({"health", "disability", "mental", "children"})


def is_sensitive(category: str) -> bool:
    """Health, disability and minors' data are sensitive personal information (PIPL Art. 28)."""
    return category in SENSITIVE_CATEGORIES


async def has_sensitive_consent(session: AsyncSession, user: User) -> bool:
    found = await session.scalar(
        select(Consent.id).where(
            Consent.user_id == user.id, Consent.kind == "sensitive", Consent.revoked_at.is_(None)
        )
    )
    return found is not None


async def give_sensitive_consent(session: AsyncSession, user: User, channel: str) -> None:
    """Separate, recorded consent before health, disability or minors' details are passed on."""
    if await has_sensitive_consent(session, user):
        return
    session.add(
        Consent(user_id=user.id, kind="sensitive", version=PRIVACY_VERSION, channel=channel)
    )
    record_audit(session, Actor("resident", str(user.id)), "consent_sensitive", f"user:{user.id}")


async def set_community(session: AsyncSession, user: User, community_id: int) -> Community | None:
    community = await session.get(Community, community_id)
    if community is None:
        return None
    user.community_id = community.id
    record_audit(
        session,
        Actor("resident", str(user.id)),
        "set_community",
        f"user:{user.id}",
        {"community_id": community.id},
    )
    return community


async def set_phone(session: AsyncSession, user: User, phone: str) -> None:
    user.phone = phone
    record_audit(session, Actor("resident", str(user.id)), "set_phone", f"user:{user.id}")


async def list_streets(session: AsyncSession) -> list[Street]:
    return list(await session.scalars(select(Street).order_by(Street.id)))


async def list_communities(session: AsyncSession, street_id: int | None = None) -> list[Community]:
    stmt = select(Community).order_by(Community.id)
    if street_id is not None:
        stmt = stmt.where(Community.street_id == street_id)
    return list(await session.scalars(stmt))


async def list_user_requests(session: AsyncSession, user_id: int, limit: int = 10) -> list[Request]:
    """A resident's own requests, newest first: nobody else's can appear here."""
    return list(
        await session.scalars(
            select(Request)
            .where(Request.user_id == user_id)
            .order_by(Request.created_at.desc(), Request.id.desc())
            .limit(limit)
        )
    )


async def get_user_request(session: AsyncSession, user_id: int, request_id: int) -> Request | None:
    request = await session.get(Request, request_id)
    if request is None or request.user_id != user_id:
        return None
    return request
