"""兑换: the reward catalog, pickup codes, fulfilment, cancellation; refusals change nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from community.audit import Actor
from community.catalog import t
from community.errors import DomainError, Forbidden
from community.timebank import (
    InsufficientPoints,
    cancel_redemption,
    create_reward,
    earn_points,
    fulfil_redemption,
    list_rewards,
    redeem_reward,
    reverse_transaction,
    update_reward,
    user_balance,
    user_redemptions,
)
from storage.db import transaction
from storage.models import LedgerAccount, Redemption

STAFF = Actor("staff", "dash:1")


async def earn(world, user: int, amount: int, key: str) -> None:
    async with transaction(world.factory) as session:
        await earn_points(
            session, user_id=user, amount=amount, key=key, reason="志愿服务", actor="system"
        )


async def make_reward(world, *, price: int = 20, stock: int = 3, provider: bool = True) -> int:
    async with transaction(world.factory) as session:
        reward = await create_reward(
            session,
            title="理发一次",
            price=price,
            stock=stock,
            kind="service",
            provider_org_id=world.org_id if provider else None,
            community_id=world.community_id,
            actor=STAFF,
        )
        return reward.id


async def refused(world, snapshot, action, error=DomainError) -> DomainError:
    before = await snapshot()
    async with transaction(world.factory) as session:
        with pytest.raises(error) as caught:
            await action(session)
    assert await snapshot() == before
    assert t(caught.value.key, **caught.value.params)  # every refusal has its Chinese text
    return caught.value


async def balance_of(world, code: str) -> int:
    async with world.factory() as session:
        return await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.code == code))


async def test_catalog_create_list_and_permissions(world, snapshot) -> None:
    reward_id = await make_reward(world)
    async with transaction(world.factory) as session:
        await create_reward(
            session, title="大米 5 斤", price=50, stock=0, actor=STAFF, provider_org_id=None
        )
        rows = await list_rewards(session, community_id=world.community_id)
        assert [(r.id, r.title, r.provider, r.price, r.stock) for r in rows] == [
            (reward_id, "理发一次", "梅园志愿者协会", 20, 3)
        ]
        everything = await list_rewards(session, include_empty=True)
        assert {r.title for r in everything} == {"理发一次", "大米 5 斤"}
        assert await list_rewards(session, community_id=world.other_community_id) == []
    # An organization manages its own rewards only; a resident none.
    await refused(
        world,
        snapshot,
        lambda s: create_reward(
            s,
            title="x",
            price=1,
            stock=1,
            actor=f"org:{world.other_org_id}/dash:5",
            provider_org_id=world.org_id,
        ),
        Forbidden,
    )
    await refused(
        world,
        snapshot,
        lambda s: update_reward(
            s, reward_id, stock=9, actor=Actor("resident", str(world.users[0]))
        ),
        Forbidden,
    )
    for bad in ({"price": 0}, {"stock": -1}, {"title": " "}, {"kind": "cash"}):
        args = {"title": "x", "price": 1, "stock": 1, "kind": "item"} | bad
        await refused(world, snapshot, lambda s, a=args: create_reward(s, actor=STAFF, **a))
    async with transaction(world.factory) as session:
        reward = await update_reward(
            session, reward_id, stock=10, actor=f"org:{world.org_id}/dash:5"
        )
        assert reward.stock == 10


async def test_redeem_spends_points_takes_stock_and_gives_a_pickup_code(world, ledger_ok) -> None:
    u = world.users[0]
    reward_id = await make_reward(world, price=20, stock=3)
    await earn(world, u, 50, "e1")
    async with transaction(world.factory) as session:
        redemption = await redeem_reward(session, user_id=u, reward_id=reward_id, key="rd1")
        assert re.fullmatch(r"[2-9A-HJ-NP-Z]{6}", redemption.pickup_code)
        assert redemption.status == "issued"
        assert await user_balance(session, u) == 30
    assert await balance_of(world, f"org:{world.org_id}") == 20
    async with transaction(world.factory) as session:  # the same key again: same redemption
        again = await redeem_reward(session, user_id=u, reward_id=reward_id, key="rd1")
        assert again.id == redemption.id
        assert await user_balance(session, u) == 30
        [line] = await user_redemptions(session, u)
        assert (line.title, line.price, line.pickup_code) == (
            "理发一次",
            20,
            redemption.pickup_code,
        )
        [view] = await list_rewards(session)
        assert view.stock == 2
    await ledger_ok()


async def test_redeem_refusals_change_nothing(world, snapshot, ledger_ok) -> None:
    u, stranger = world.users[0], world.users[4]
    reward_id = await make_reward(world, price=20, stock=1)
    await earn(world, u, 15, "e1")
    error = await refused(
        world,
        snapshot,
        lambda s: redeem_reward(s, user_id=u, reward_id=reward_id, key="rd1"),
        InsufficientPoints,
    )
    assert error.params == {"need": 20, "have": 15}
    await earn(world, u, 30, "e2")
    async with transaction(world.factory) as session:
        await redeem_reward(session, user_id=u, reward_id=reward_id, key="rd1")
    error = await refused(
        world, snapshot, lambda s: redeem_reward(s, user_id=u, reward_id=reward_id, key="rd2")
    )
    assert error.key == "timebank.out_of_stock"
    error = await refused(
        world,
        snapshot,
        lambda s: redeem_reward(s, user_id=stranger, reward_id=reward_id, key="rd3"),
    )
    assert error.key == "timebank.reward_other_community"
    error = await refused(
        world, snapshot, lambda s: redeem_reward(s, user_id=u, reward_id=4242, key="rd4")
    )
    assert error.key == "timebank.reward_not_found"
    await ledger_ok()


async def test_fulfil_by_provider_then_no_cancel(world, snapshot, ledger_ok) -> None:
    u = world.users[0]
    reward_id = await make_reward(world)
    await earn(world, u, 50, "e1")
    async with transaction(world.factory) as session:
        redemption = await redeem_reward(session, user_id=u, reward_id=reward_id, key="rd1")
    code = redemption.pickup_code
    await refused(
        world,
        snapshot,
        lambda s: fulfil_redemption(s, pickup_code=code, actor=f"org:{world.other_org_id}/dash:3"),
        Forbidden,
    )
    await refused(
        world,
        snapshot,
        lambda s: fulfil_redemption(s, pickup_code=code, actor=Actor("resident", str(u))),
        Forbidden,
    )
    error = await refused(
        world, snapshot, lambda s: fulfil_redemption(s, pickup_code="ZZZZZZ", actor=STAFF)
    )
    assert error.key == "timebank.pickup_unknown"
    async with transaction(world.factory) as session:
        done = await fulfil_redemption(
            session, pickup_code=f" {code.lower()} ", actor=f"org:{world.org_id}/dash:3"
        )
        assert done.status == "fulfilled" and done.fulfilled_at is not None
    error = await refused(
        world, snapshot, lambda s: fulfil_redemption(s, pickup_code=code, actor=STAFF)
    )
    assert error.key == "timebank.redemption_not_open"
    error = await refused(
        world, snapshot, lambda s: cancel_redemption(s, redemption_id=redemption.id, actor=STAFF)
    )
    assert error.key == "timebank.redemption_not_open"
    await ledger_ok()


async def test_cancel_is_a_reversal_and_returns_the_stock(world, snapshot, ledger_ok) -> None:
    u = world.users[0]
    reward_id = await make_reward(world, price=20, stock=1, provider=False)
    await earn(world, u, 20, "e1")
    async with transaction(world.factory) as session:
        redemption = await redeem_reward(session, user_id=u, reward_id=reward_id, key="rd1")
    assert await balance_of(world, f"rewards:{world.community_id}") == 20
    # A spend is undone with cancel_redemption (stock too), never with a bare reversal.
    error = await refused(
        world,
        snapshot,
        lambda s: reverse_transaction(
            s, redemption.transaction_id, key="rv", reason="r", actor=STAFF
        ),
    )
    assert error.key == "timebank.use_cancel"
    await refused(
        world,
        snapshot,
        lambda s: cancel_redemption(
            s, redemption_id=redemption.id, actor=Actor("resident", str(world.users[1]))
        ),
        Forbidden,
    )
    async with transaction(world.factory) as session:
        cancelled = await cancel_redemption(
            session, redemption_id=redemption.id, actor=Actor("resident", str(u))
        )
        assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
        assert await user_balance(session, u) == 20
        [view] = await list_rewards(session)
        assert view.stock == 1
        row = await session.get(Redemption, redemption.id)
        assert row.status == "cancelled"
    assert await balance_of(world, f"rewards:{world.community_id}") == 0
    error = await refused(
        world, snapshot, lambda s: cancel_redemption(s, redemption_id=redemption.id, actor=STAFF)
    )
    assert error.key == "timebank.redemption_not_open"
    # The points and the stock are back: the resident can redeem it again.
    async with transaction(world.factory) as session:
        await redeem_reward(session, user_id=u, reward_id=reward_id, key="rd2")
        assert await user_balance(session, u) == 0
    await ledger_ok()
