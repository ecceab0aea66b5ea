"""转赠: family links confirmed with a one-time code, and point transfers between them.

Linking: resident B asks for a code (valid 30 minutes, once) and tells it to A; A enters it.
Both took a step, so the link goes both ways (A→B and B→A may give to each other).

Transfers are capped per sender and per Beijing-time day (``daily_limit``, default 200
points: the issue leaves the figure open, so it is a parameter rather than a setting for
now). The cap is checked after locking both accounts (FOR NO KEY UPDATE, in id order), so
two simultaneous transfers cannot both squeeze under it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.audit import Actor, record_audit
from community.catalog import t
from community.errors import DomainError, NotFound
from community.notify import Reply, notify_user
from community.timebank.accounts import ACCOUNTS, user_account
from community.timebank.common import (
    as_actor,
    check_amount,
    china_day_start,
    normalize_code,
    random_code,
)
from community.timebank.ledger import ENTRIES, InsufficientPoints, Leg, post
from storage.models import FamilyLink, LedgerTransaction, LinkCode, User

DEFAULT_DAILY_LIMIT = 200
CODE_TTL = timedelta(minutes=30)


async def _active_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("timebank.user_not_found")
    return user


async def create_family_code(
    session: AsyncSession, user_id: int, *, now: datetime | None = None
) -> LinkCode:
    """A one-time code the resident gives to a family member, who enters it to link."""
    await _active_user(session, user_id)
    now = now or clock.now()
    for _ in range(8):
        try:
            async with session.begin_nested():
                code = LinkCode(
                    code=random_code(6),
                    purpose="family",
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
                session.add(code)
        except IntegrityError:  # the code is taken (also by a 'bind' code): draw again
            continue
        record_audit(session, Actor("resident", str(user_id)), "timebank.family_code", None)
        return code
    raise RuntimeError("no free link code after 8 draws")


async def link_family(
    session: AsyncSession, *, user_id: int, code: str, now: datetime | None = None
) -> FamilyLink:
    """Resident ``user_id`` enters a relative's code: both become linked family members."""
    now = now or clock.now()
    await _active_user(session, user_id)
    entered = normalize_code(code)
    link_code = await session.scalar(
        select(LinkCode).where(LinkCode.code == entered, LinkCode.purpose == "family")
    )
    if link_code is None:
        raise DomainError("timebank.family_code_invalid")
    if link_code.used_at is not None:
        raise DomainError("timebank.family_code_used")
    if link_code.expires_at <= now:
        raise DomainError("timebank.family_code_expired")
    relative_id = link_code.user_id
    if relative_id == user_id:
        raise DomainError("timebank.family_self")
    if await is_family(session, user_id, relative_id):
        raise DomainError("timebank.family_already")
    link = FamilyLink(user_id=user_id, relative_id=relative_id, created_at=now)
    try:
        async with session.begin_nested():
            # Consume the code once, even if two people type it at the same moment.
            used = await session.execute(
                update(LinkCode)
                .where(
                    LinkCode.code == entered, LinkCode.used_at.is_(None), LinkCode.expires_at > now
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if used.rowcount != 1:  # type: ignore[attr-defined]
                raise DomainError("timebank.family_code_used")
            back = FamilyLink(user_id=relative_id, relative_id=user_id, created_at=now)
            session.add_all([link, back])
    except IntegrityError:  # the pair was linked by another code at the same moment
        raise DomainError("timebank.family_already") from None
    await session.refresh(link_code, ["used_at"])
    record_audit(
        session,
        Actor("resident", str(user_id)),
        "timebank.family_link",
        f"user:{relative_id}",
    )
    return link


async def is_family(session: AsyncSession, user_id: int, relative_id: int) -> bool:
    found = await session.scalar(
        select(FamilyLink.user_id).where(
            FamilyLink.user_id == user_id, FamilyLink.relative_id == relative_id
        )
    )
    return found is not None


async def family_members(session: AsyncSession, user_id: int) -> list[tuple[int, str | None]]:
    """(user id, display name) of the resident's linked family members."""
    rows = await session.execute(
        select(User.id, User.display_name)
        .join(FamilyLink, FamilyLink.relative_id == User.id)
        .where(FamilyLink.user_id == user_id, User.deleted_at.is_(None))
        .order_by(User.id)
    )
    return [(uid, name) for uid, name in rows]


_PARTIES = (  # both residents, and whether the sender has linked the recipient
    select(User.id, User.display_name, FamilyLink.user_id)
    .outerjoin(
        FamilyLink,
        and_(FamilyLink.user_id == bindparam("sender"), FamilyLink.relative_id == User.id),
    )
    .where(User.id.in_(bindparam("ids", expanding=True)), User.deleted_at.is_(None))
)
_LOCK = (  # both accounts, in id order: see the module docstring
    select(ACCOUNTS.c.code, ACCOUNTS.c.id)
    .where(ACCOUNTS.c.code.in_(bindparam("codes", expanding=True)))
    .order_by(ACCOUNTS.c.id)
    .with_for_update(key_share=True)  # FOR NO KEY UPDATE on PostgreSQL, nothing on SQLite
)
_KEY_USED = select(LedgerTransaction.id).where(
    LedgerTransaction.idempotency_key == bindparam("key")
)
_SENT_SINCE = (
    select(func.coalesce(func.sum(-ENTRIES.c.amount), 0))
    .join(LedgerTransaction, LedgerTransaction.id == ENTRIES.c.transaction_id)
    .where(
        ENTRIES.c.account_id == bindparam("account"),
        ENTRIES.c.amount < 0,
        ENTRIES.c.created_at >= bindparam("since"),
        LedgerTransaction.kind == "transfer",
    )
)


async def transferred_today(
    session: AsyncSession, account_id: int, now: datetime | None = None
) -> int:
    """Points this account gave away by transfer since midnight, Beijing time."""
    conn = await session.connection()
    since = china_day_start(now or clock.now())
    return int(await conn.scalar(_SENT_SINCE, {"account": account_id, "since": since}) or 0)


async def transfer_points(
    session: AsyncSession,
    *,
    from_user_id: int,
    to_user_id: int,
    amount: int,
    key: str,
    actor: str | Actor | None = None,
    daily_limit: int = DEFAULT_DAILY_LIMIT,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Give points to a linked family member, within the sender's daily limit."""
    check_amount(amount)
    who = as_actor(actor or f"resident:{from_user_id}")
    if from_user_id == to_user_id:
        raise DomainError("timebank.transfer_self")
    conn = await session.connection()
    parties = {
        uid: (name, linked)
        for uid, name, linked in await conn.execute(
            _PARTIES, {"sender": from_user_id, "ids": [from_user_id, to_user_id]}
        )
    }
    if from_user_id not in parties or to_user_id not in parties:
        raise NotFound("timebank.user_not_found")
    if parties[to_user_id][1] is None:
        raise DomainError("timebank.transfer_not_family")
    legs = [Leg(user_account(from_user_id), -amount), Leg(user_account(to_user_id), amount)]
    if await conn.scalar(_KEY_USED, {"key": key}) is not None:
        # A replay answers before the limit (which already counted it).
        return (await post(session, key=key, kind="transfer", reason="-", actor=who, legs=legs)).txn
    now = now or clock.now()
    # Nothing is written before the limit is known, so a refusal needs no savepoint here.
    codes = [user_account(from_user_id).code, user_account(to_user_id).code]
    locked = dict((await conn.execute(_LOCK, {"codes": codes})).all())
    if codes[0] not in locked:
        raise InsufficientPoints(need=amount, have=0)
    sent = await transferred_today(session, locked[codes[0]], now)
    if sent + amount > daily_limit:
        if await conn.scalar(_KEY_USED, {"key": key}) is not None:  # committed while we waited
            return (
                await post(session, key=key, kind="transfer", reason="-", actor=who, legs=legs)
            ).txn
        raise DomainError(
            "timebank.transfer_limit", limit=daily_limit, left=max(0, daily_limit - sent)
        )
    name = parties[from_user_id][0] or ""
    posted = await post(
        session,
        key=key,
        kind="transfer",
        reason=t("timebank.reason.transfer", giver=name, receiver=parties[to_user_id][0] or ""),
        actor=who,
        legs=legs,
        ref_type="user",
        ref_id=str(to_user_id),
        detail={"from": from_user_id, "to": to_user_id},
        now=now,
    )
    if posted.created:
        await notify_user(
            session,
            to_user_id,
            Reply(t("timebank.notice.received", name=name, points=amount)),
            dedupe_key=f"tb:transfer:{posted.txn.id}",
        )
    return posted.txn
