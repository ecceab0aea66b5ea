"""A resident's points: earning, staff adjustments, balance and history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor
from community.errors import DomainError, NotFound
from community.timebank.accounts import ACCOUNTS, account_balance, pool_account, user_account
from community.timebank.common import as_actor, check_amount, check_reason, require_staff
from community.timebank.ledger import ENTRIES, Leg, post
from storage.models import LedgerTransaction, User

_USER_COMMUNITY = select(User.community_id).where(User.id == bindparam("uid"))


@dataclass(frozen=True)
class HistoryLine:
    """One line of "我的积分": what happened to the balance, and why."""

    when: datetime
    amount: int
    reason: str
    kind: str
    balance_after: int
    transaction_id: int = 0


async def _community_of(session: AsyncSession, user_id: int, community_id: int | None) -> int:
    """The pool to draw from: the given community, else the resident's own."""
    conn = await session.connection()
    found = (await conn.execute(_USER_COMMUNITY, {"uid": user_id})).first()
    if found is None:
        raise NotFound("timebank.user_not_found")
    chosen = community_id if community_id is not None else found[0]
    if chosen is None:
        raise DomainError("timebank.no_community")
    return int(chosen)


async def earn_points(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    key: str,
    reason: str,
    actor: str,
    community_id: int | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
) -> LedgerTransaction:
    """Credit a resident from the community's issuing pool (attendance, a claimed wish…).

    ``key`` makes it safe to retry: e.g. ``activity:12:user:7`` posts once, however often a
    job or a button press repeats it; the original transaction is returned.
    """
    check_amount(amount)
    pool = pool_account(await _community_of(session, user_id, community_id))
    posted = await post(
        session,
        key=key,
        kind="earn",
        reason=reason,
        actor=actor,
        legs=[Leg(pool, -amount), Leg(user_account(user_id), amount)],
        ref_type=ref_type,
        ref_id=ref_id,
    )
    return posted.txn


async def adjust_points(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    reason: str,
    actor: str | Actor,
    key: str,
    community_id: int | None = None,
) -> LedgerTransaction:
    """A staff correction (positive or negative) against the pool, with a required reason.

    Only staff may adjust, the reason is stored on the transaction and in the audit log,
    and a negative adjustment can no more overdraw a resident than a redemption can.
    """
    who = as_actor(actor)
    require_staff(who)
    reason = check_reason(reason)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise DomainError("timebank.bad_amount")
    pool = pool_account(await _community_of(session, user_id, community_id))
    posted = await post(
        session,
        key=key,
        kind="adjustment",
        reason=reason,
        actor=who,
        legs=[Leg(pool, -amount), Leg(user_account(user_id), amount)],
        ref_type="user",
        ref_id=str(user_id),
    )
    return posted.txn


async def user_balance(session: AsyncSession, user_id: int) -> int:
    """The resident's points (0 before their first posting)."""
    return await account_balance(session, user_account(user_id).code)


async def user_history(session: AsyncSession, user_id: int, limit: int = 20) -> list[HistoryLine]:
    """The newest ``limit`` postings of a resident, newest first, with the balance after each."""
    account_id = await session.scalar(
        select(ACCOUNTS.c.id).where(ACCOUNTS.c.code == user_account(user_id).code)
    )
    if account_id is None:
        return []
    # Running sum over the account's own entries (indexed by account_id, id): a resident
    # has hundreds of entries at most, and the total is exact rather than derived from the
    # cached balance.
    running = (
        select(
            ENTRIES.c.id,
            ENTRIES.c.transaction_id,
            ENTRIES.c.amount,
            func.sum(ENTRIES.c.amount).over(order_by=ENTRIES.c.id).label("after"),
        )
        .where(ENTRIES.c.account_id == account_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            LedgerTransaction.created_at,
            running.c.amount,
            LedgerTransaction.reason,
            LedgerTransaction.kind,
            running.c.after,
            LedgerTransaction.id,
        )
        .join(LedgerTransaction, LedgerTransaction.id == running.c.transaction_id)
        .order_by(running.c.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    return [
        HistoryLine(
            when=when,
            amount=int(amount),
            reason=reason,
            kind=kind,
            balance_after=int(after),
            transaction_id=int(txn_id),
        )
        for when, amount, reason, kind, after, txn_id in rows
    ]
