"""Corrections: a reversing transaction mirrors the original, which stays untouched."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor
from community.errors import DomainError, NotFound
from community.timebank.ledger import ENTRIES, Leg, post
from storage.models import LedgerTransaction


async def reverse_transaction(
    session: AsyncSession,
    transaction_id: int,
    *,
    key: str,
    reason: str,
    actor: str | Actor,
) -> LedgerTransaction:
    """Correct a transaction with its mirror image; the original stays as it was.

    A reversal cannot itself be reversed (post a new transaction instead), a transaction is
    reversed at most once (the unique ``reverses_id`` holds even under concurrency), and a
    redemption is undone with ``cancel_redemption`` so that its stock comes back too.
    """
    return await reverse(session, transaction_id, key=key, reason=reason, actor=actor)


async def reverse(
    session: AsyncSession,
    transaction_id: int,
    *,
    key: str,
    reason: str,
    actor: str | Actor,
    allow_spend: bool = False,
) -> LedgerTransaction:
    """``reverse_transaction``, and for the rewards module also redemptions (``spend``)."""
    original = await session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise NotFound("timebank.txn_not_found")
    replay = await session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    )
    if replay is not None:
        if replay.reverses_id != original.id:
            raise DomainError("timebank.key_conflict")
        return replay
    if original.kind == "reversal":
        raise DomainError("timebank.reverse_reversal")
    if original.kind == "spend" and not allow_spend:
        raise DomainError("timebank.use_cancel")
    if await reversal_of(session, original.id) is not None:
        raise DomainError("timebank.already_reversed")
    rows = await session.execute(
        select(ENTRIES.c.account_id, ENTRIES.c.amount).where(
            ENTRIES.c.transaction_id == original.id
        )
    )
    legs = [Leg(aid, -amt) for aid, amt in rows]
    try:
        posted = await post(
            session,
            key=key,
            kind="reversal",
            reason=reason,
            actor=actor,
            legs=legs,
            ref_type=original.ref_type,
            ref_id=original.ref_id,
            detail={"reverses_kind": original.kind, "reverses_reason": original.reason},
            reverses_id=original.id,
        )
    except IntegrityError:  # a concurrent reversal of the same transaction won
        raise DomainError("timebank.already_reversed") from None
    return posted.txn


async def reversal_of(session: AsyncSession, transaction_id: int) -> int | None:
    """The id of the transaction that reversed this one, if any."""
    return await session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == transaction_id)
    )
