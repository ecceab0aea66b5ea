"""The reward catalog (积分兑换): items or services, each with a provider, a price and a stock."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor, record_audit
from community.errors import DomainError, Forbidden, NotFound
from community.timebank.common import STAFF_KINDS, actor_org_id, as_actor
from storage.models import Community, Organization, Reward

REWARD_KINDS = frozenset({"item", "service"})


@dataclass(frozen=True)
class RewardView:
    """A catalog line as a resident sees it."""

    id: int
    title: str
    description: str
    kind: str
    provider: str | None
    price: int
    stock: int


def check_reward_manager(actor: Actor, provider_org_id: int | None) -> None:
    """Staff manage every reward; an organization only the rewards it provides."""
    if actor.kind in STAFF_KINDS:
        return
    if provider_org_id is not None and actor_org_id(actor) == provider_org_id:
        return
    raise Forbidden("timebank.not_allowed")


def _check_fields(title: str, price: int, stock: int, kind: str) -> str:
    title = (title or "").strip()
    if not title or len(title) > 64:
        raise DomainError("timebank.reward_bad_title")
    for value in (price, stock):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DomainError("timebank.bad_amount")
    if price <= 0 or stock < 0:
        raise DomainError("timebank.bad_amount")
    if kind not in REWARD_KINDS:
        raise DomainError("timebank.reward_bad_kind")
    return title


async def create_reward(
    session: AsyncSession,
    *,
    title: str,
    price: int,
    stock: int,
    actor: str | Actor,
    kind: str = "item",
    provider_org_id: int | None = None,
    community_id: int | None = None,
    description: str = "",
) -> Reward:
    """Add a reward to the catalog (staff, or the providing organization itself)."""
    who = as_actor(actor)
    title = _check_fields(title, price, stock, kind)
    check_reward_manager(who, provider_org_id)
    if provider_org_id is not None:
        org = await session.get(Organization, provider_org_id)
        if org is None or not org.active:
            raise DomainError("timebank.provider_inactive")
    if community_id is not None and await session.get(Community, community_id) is None:
        raise NotFound("timebank.unknown_community")
    reward = Reward(
        title=title,
        description=(description or "").strip()[:1000],
        kind=kind,
        provider_org_id=provider_org_id,
        community_id=community_id,
        price=price,
        stock=stock,
        active=True,
    )
    session.add(reward)
    await session.flush()
    record_audit(
        session,
        who,
        "timebank.reward_create",
        f"reward:{reward.id}",
        {"title": title, "price": price, "stock": stock, "provider": provider_org_id},
    )
    return reward


async def update_reward(
    session: AsyncSession,
    reward_id: int,
    *,
    actor: str | Actor,
    price: int | None = None,
    stock: int | None = None,
    active: bool | None = None,
) -> Reward:
    """Change a reward's price, stock or availability; issued pickup codes stay valid."""
    who = as_actor(actor)
    reward = await session.get(Reward, reward_id)
    if reward is None:
        raise NotFound("timebank.reward_not_found")
    check_reward_manager(who, reward.provider_org_id)
    _check_fields(
        reward.title,
        reward.price if price is None else price,
        reward.stock if stock is None else stock,
        reward.kind,
    )
    before = {"price": reward.price, "stock": reward.stock, "active": reward.active}
    if price is not None:
        reward.price = price
    if stock is not None:
        reward.stock = stock
    if active is not None:
        reward.active = active
    after = {"price": reward.price, "stock": reward.stock, "active": reward.active}
    record_audit(
        session, who, "timebank.reward_update", f"reward:{reward.id}", {"from": before, "to": after}
    )
    await session.flush()
    return reward


async def list_rewards(
    session: AsyncSession, *, community_id: int | None = None, include_empty: bool = False
) -> list[RewardView]:
    """Active rewards a resident of ``community_id`` can redeem, cheapest first."""
    stmt = (
        select(Reward, Organization.name)
        .outerjoin(Organization, Organization.id == Reward.provider_org_id)
        .where(Reward.active.is_(True))
        .order_by(Reward.price, Reward.id)
    )
    if community_id is not None:
        stmt = stmt.where((Reward.community_id == community_id) | Reward.community_id.is_(None))
    if not include_empty:
        stmt = stmt.where(Reward.stock > 0)
    rows = await session.execute(stmt)
    return [
        RewardView(
            id=r.id,
            title=r.title,
            description=r.description,
            kind=r.kind,
            provider=name,
            price=r.price,
            stock=r.stock,
        )
        for r, name in rows
    ]
