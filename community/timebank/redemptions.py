"""兑换: spend points on a reward, get a pickup code; the provider fulfils, or it is cancelled.

Where the points go: to the provider organization's account (``org:<id>``), or to the
community's ``rewards:<id>`` sink when the community hands out its own stock. The provider's
balance is then the number of points it has honoured (for 结算 and recognition), and
cancelling is a reversal that takes exactly those points back.

Lock order everywhere: the reward row, then ledger accounts (see ledger.py), so redemptions
and cancellations never wait on each other in a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.audit import Actor, record_audit
from community.catalog import t
from community.errors import DomainError, Forbidden, NotFound
from community.timebank.accounts import (
    account_balance,
    org_account,
    rewards_account,
    user_account,
)
from community.timebank.common import (
    STAFF_KINDS,
    actor_org_id,
    as_actor,
    dialect_insert,
    normalize_code,
    random_code,
)
from community.timebank.ledger import InsufficientPoints, Leg, post
from community.timebank.reversal import reverse
from storage.models import LedgerTransaction, Redemption, Reward, User

_REWARDS = Reward.__table__
_REDEMPTIONS = Redemption.__table__


class _Replay(Exception):
    """A concurrent redemption with the same key won: undo ours, answer with theirs."""

    def __init__(self, txn: LedgerTransaction) -> None:
        self.txn = txn


@dataclass(frozen=True)
class RedemptionView:
    id: int
    reward_id: int
    title: str
    price: int
    pickup_code: str
    status: str
    created_at: datetime


async def _existing(
    session: AsyncSession, txn: LedgerTransaction, user_id: int, reward_id: int
) -> Redemption:
    found = await session.scalar(select(Redemption).where(Redemption.transaction_id == txn.id))
    if found is None or found.user_id != user_id or found.reward_id != reward_id:
        raise DomainError("timebank.key_conflict")
    return found


async def redeem_reward(
    session: AsyncSession,
    *,
    user_id: int,
    reward_id: int,
    key: str,
    actor: str | Actor | None = None,
) -> Redemption:
    """Spend the reward's price and take one from its stock; returns the pickup code.

    A replayed ``key`` returns the first redemption. Stock and points are both taken by
    conditional UPDATEs inside one savepoint, so 50 simultaneous redemptions never oversell
    the stock nor overdraw the balance, and a refusal leaves both as they were.
    """
    who = as_actor(actor or f"resident:{user_id}")
    reward = await session.get(Reward, reward_id)
    if reward is None or not reward.active:
        raise NotFound("timebank.reward_not_found")
    resident = (
        await session.execute(
            select(User.community_id).where(User.id == user_id, User.deleted_at.is_(None))
        )
    ).first()
    if resident is None:
        raise NotFound("timebank.user_not_found")
    if reward.community_id is not None and reward.community_id != resident[0]:
        raise DomainError("timebank.reward_other_community")
    previous = await session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    )
    if previous is not None:
        return await _existing(session, previous, user_id, reward_id)
    # Friendly early answers; the conditional UPDATEs below are what actually decide.
    if reward.stock <= 0:
        raise DomainError("timebank.out_of_stock", title=reward.title)
    have = await account_balance(session, user_account(user_id).code)
    if have < reward.price:
        raise InsufficientPoints(need=reward.price, have=have)

    provider = (
        org_account(reward.provider_org_id)
        if reward.provider_org_id is not None
        else rewards_account(reward.community_id)
    )
    try:
        async with session.begin_nested():
            taken = await session.execute(
                update(_REWARDS)
                .where(_REWARDS.c.id == reward.id, _REWARDS.c.stock > 0, _REWARDS.c.active)
                .values(stock=_REWARDS.c.stock - 1)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise DomainError("timebank.out_of_stock", title=reward.title)
            posted = await post(
                session,
                key=key,
                kind="spend",
                reason=t("timebank.reason.redeem", title=reward.title),
                actor=who,
                legs=[Leg(user_account(user_id), -reward.price), Leg(provider, reward.price)],
                ref_type="reward",
                ref_id=str(reward.id),
                detail={"reward_id": reward.id, "price": reward.price},
            )
            if not posted.created:
                raise _Replay(posted.txn)
            redemption = await _insert_redemption(session, reward.id, user_id, posted.txn.id)
            record_audit(
                session,
                who,
                "timebank.redeem",
                f"redemption:{redemption.id}",
                {"reward_id": reward.id, "price": reward.price, "txn": posted.txn.id},
            )
    except _Replay as replay:
        return await _existing(session, replay.txn, user_id, reward_id)
    await session.refresh(reward, ["stock"])
    return redemption


async def _insert_redemption(
    session: AsyncSession, reward_id: int, user_id: int, txn_id: int
) -> Redemption:
    """Insert with a fresh pickup code; a (very unlikely) taken code just draws another."""
    for _ in range(8):
        stmt = dialect_insert(session, Redemption).values(
            reward_id=reward_id,
            user_id=user_id,
            transaction_id=txn_id,
            pickup_code=random_code(6),
            status="issued",
            created_at=clock.now(),
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["pickup_code"])
        row = await session.scalar(
            stmt.returning(Redemption), execution_options={"populate_existing": True}
        )
        if row is not None:
            return row
    raise RuntimeError("no free pickup code after 8 draws")  # 32**6 codes: not reached


def _check_handler(actor: Actor, reward: Reward, redemption: Redemption) -> None:
    """Staff, the providing organization, or (to cancel) the resident who redeemed."""
    if actor.kind in STAFF_KINDS:
        return
    if reward.provider_org_id is not None and actor_org_id(actor) == reward.provider_org_id:
        return
    if actor.kind == "resident" and actor.id == str(redemption.user_id):
        return
    raise Forbidden("timebank.not_allowed")


async def fulfil_redemption(
    session: AsyncSession, *, pickup_code: str, actor: str | Actor
) -> Redemption:
    """The provider hands the reward over against the pickup code (核销)."""
    who = as_actor(actor)
    redemption = await session.scalar(
        select(Redemption).where(Redemption.pickup_code == normalize_code(pickup_code))
    )
    if redemption is None:
        raise NotFound("timebank.pickup_unknown")
    reward = await session.get(Reward, redemption.reward_id)
    assert reward is not None
    if who.kind == "resident":  # a resident cannot confirm their own pickup
        raise Forbidden("timebank.not_allowed")
    _check_handler(who, reward, redemption)
    changed = await _move(session, redemption.id, "fulfilled")
    record_audit(session, who, "timebank.fulfil", f"redemption:{changed.id}")
    return changed


async def cancel_redemption(
    session: AsyncSession,
    *,
    redemption_id: int,
    actor: str | Actor,
    reason: str | None = None,
) -> Redemption:
    """Undo an unfulfilled redemption: a reversing transaction and the stock back, together."""
    who = as_actor(actor)
    redemption = await session.get(Redemption, redemption_id)
    if redemption is None:
        raise NotFound("timebank.redemption_not_found")
    reward = await session.get(Reward, redemption.reward_id)
    assert reward is not None
    _check_handler(who, reward, redemption)
    if redemption.status != "issued":
        raise DomainError("timebank.redemption_not_open")
    why = (reason or "").strip() or t("timebank.reason.cancel", title=reward.title)
    async with session.begin_nested():
        # The reward row first (same order as redeem_reward), then the ledger.
        await session.execute(
            update(_REWARDS).where(_REWARDS.c.id == reward.id).values(stock=_REWARDS.c.stock + 1)
        )
        await reverse(
            session,
            redemption.transaction_id,
            key=f"cancel:redemption:{redemption.id}",
            reason=why,
            actor=who,
            allow_spend=True,
        )
        # Last: the only statement that can still refuse (a concurrent fulfil or cancel)
        # must not leave a loaded object showing a status that was rolled back.
        changed = await _move(session, redemption.id, "cancelled")
        record_audit(
            session, who, "timebank.cancel_redemption", f"redemption:{changed.id}", {"reason": why}
        )
    await session.refresh(reward, ["stock"])
    return changed


async def _move(session: AsyncSession, redemption_id: int, status: str) -> Redemption:
    """issued → ``status``, once: a concurrent fulfil/cancel finds nothing left to change."""
    stamp = "fulfilled_at" if status == "fulfilled" else "cancelled_at"
    changed = await session.scalar(
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status == "issued")
        .values({"status": status, stamp: clock.now()})
        .returning(Redemption),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    if changed is None:
        raise DomainError("timebank.redemption_not_open")
    return changed


async def user_redemptions(
    session: AsyncSession, user_id: int, limit: int = 20
) -> list[RedemptionView]:
    """A resident's redemptions, newest first, with their pickup codes."""
    rows = await session.execute(
        select(Redemption, Reward.title, LedgerTransaction.detail)
        .join(Reward, Reward.id == Redemption.reward_id)
        .join(LedgerTransaction, LedgerTransaction.id == Redemption.transaction_id)
        .where(Redemption.user_id == user_id)
        .order_by(Redemption.id.desc())
        .limit(max(1, min(limit, 200)))
    )
    return [
        RedemptionView(
            id=r.id,
            reward_id=r.reward_id,
            title=title,
            price=int((detail or {}).get("price", 0)),
            pickup_code=r.pickup_code,
            status=r.status,
            created_at=r.created_at,
        )
        for r, title, detail in rows
    ]
