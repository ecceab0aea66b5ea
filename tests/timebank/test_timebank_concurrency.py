"""Simultaneous postings, each in its own session and transaction (the point is PostgreSQL;
on SQLite writers queue on the process's write lock, and the answers must be the same)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select

from community.audit import Actor
from community.errors import DomainError
from community.timebank import (
    cancel_redemption,
    create_family_code,
    create_reward,
    earn_points,
    fulfil_redemption,
    link_family,
    lock_accounts,
    pool_account,
    redeem_reward,
    reverse_transaction,
    transfer_points,
    user_account,
    user_balance,
)
from storage.db import transaction
from storage.models import FamilyLink, LedgerEntry, LedgerTransaction, Redemption, Reward

STAFF = Actor("staff", "dash:1")


async def run_all(world, n: int, action: Callable[[Any, int], Awaitable[Any]]) -> list[Any]:
    """``n`` tasks at once, each in its own transaction; result or the refusal's key."""

    async def one(i: int) -> Any:
        try:
            async with transaction(world.factory) as session:
                return await action(session, i)
        except DomainError as exc:
            return exc.key

    return await asyncio.gather(*(one(i) for i in range(n)))


async def setup(world, *, points: int, stock: int, price: int = 10) -> int:
    async with transaction(world.factory) as session:
        await earn_points(
            session, user_id=world.users[0], amount=points, key="seed", reason="r", actor="system"
        )
        reward = await create_reward(
            session,
            title="鸡蛋一盒",
            price=price,
            stock=stock,
            actor=STAFF,
            provider_org_id=world.org_id,
        )
        return reward.id


async def test_fifty_redemptions_never_overdraw(world, ledger_ok) -> None:
    u, n = world.users[0], 20
    reward_id = await setup(world, points=n * 10, stock=100)
    results = await run_all(
        world, 50, lambda s, i: redeem_reward(s, user_id=u, reward_id=reward_id, key=f"rd:{i}")
    )
    outcomes = Counter(r if isinstance(r, str) else "ok" for r in results)
    assert outcomes == {"ok": n, "timebank.insufficient": 50 - n}
    async with world.factory() as session:
        assert await user_balance(session, u) == 0
        assert await session.scalar(select(Reward.stock).where(Reward.id == reward_id)) == 100 - n
        assert await session.scalar(select(func.count()).select_from(Redemption)) == n
        spends = await session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == "spend")
        )
        assert spends == n
        codes = await session.scalars(select(Redemption.pickup_code))
        assert len(set(codes.all())) == n
    await ledger_ok()


async def test_fifty_redemptions_never_oversell(world, ledger_ok) -> None:
    u = world.users[0]
    reward_id = await setup(world, points=500, stock=7)
    results = await run_all(
        world, 50, lambda s, i: redeem_reward(s, user_id=u, reward_id=reward_id, key=f"rd:{i}")
    )
    outcomes = Counter(r if isinstance(r, str) else "ok" for r in results)
    assert outcomes == {"ok": 7, "timebank.out_of_stock": 43}
    async with world.factory() as session:
        assert await user_balance(session, u) == 500 - 70
        assert await session.scalar(select(Reward.stock).where(Reward.id == reward_id)) == 0
    await ledger_ok()


async def test_same_key_at_once_posts_once(world, ledger_ok) -> None:
    u = world.users[1]
    results = await run_all(
        world,
        20,
        lambda s, i: earn_points(
            s, user_id=u, amount=15, key="activity:7:user:2", reason="r", actor="system"
        ),
    )
    assert len({txn.id for txn in results}) == 1
    async with world.factory() as session:
        assert await user_balance(session, u) == 15
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 2
    await ledger_ok()


async def test_many_earners_share_the_hot_pool(world, ledger_ok) -> None:
    users = world.users[:4]
    results = await run_all(
        world,
        40,
        lambda s, i: earn_points(
            s, user_id=users[i % 4], amount=i + 1, key=f"e:{i}", reason="r", actor="system"
        ),
    )
    assert all(isinstance(r, LedgerTransaction) for r in results)
    async with world.factory() as session:
        assert sum([await user_balance(session, u) for u in users]) == sum(range(1, 41))
    await ledger_ok()


async def test_crossing_transfers_neither_deadlock_nor_beat_the_limit(world, ledger_ok) -> None:
    a, b = world.users[:2]
    async with transaction(world.factory) as session:
        code = await create_family_code(session, b)
        await link_family(session, user_id=a, code=code.code)
        for user in (a, b):
            await earn_points(
                session, user_id=user, amount=1000, key=f"seed:{user}", reason="r", actor="s"
            )

    def move(session, i: int):
        sender, receiver = (a, b) if i % 2 else (b, a)
        return transfer_points(
            session, from_user_id=sender, to_user_id=receiver, amount=10, key=f"t:{i}"
        )

    results = await run_all(world, 60, move)
    outcomes = Counter(r if isinstance(r, str) else "ok" for r in results)
    assert outcomes == {"ok": 40, "timebank.transfer_limit": 20}  # 200/day each way
    async with world.factory() as session:
        assert await user_balance(session, a) == 1000
        assert await user_balance(session, b) == 1000
    await ledger_ok()


async def test_one_reversal_wins(world, ledger_ok) -> None:
    u = world.users[0]
    async with transaction(world.factory) as session:
        txn = await earn_points(session, user_id=u, amount=30, key="e", reason="r", actor="s")
    results = await run_all(
        world,
        10,
        lambda s, i: reverse_transaction(s, txn.id, key=f"rev:{i}", reason="错记", actor=STAFF),
    )
    outcomes = Counter(r if isinstance(r, str) else "ok" for r in results)
    assert outcomes == {"ok": 1, "timebank.already_reversed": 9}
    async with world.factory() as session:
        assert await user_balance(session, u) == 0
    await ledger_ok()


async def test_cancel_and_fulfil_race_one_wins(world, ledger_ok) -> None:
    u = world.users[0]
    reward_id = await setup(world, points=100, stock=5)
    for round_ in range(3):
        async with transaction(world.factory) as session:
            red = await redeem_reward(session, user_id=u, reward_id=reward_id, key=f"rd{round_}")

        def act(session, i: int, red=red):
            if i % 2:
                return fulfil_redemption(session, pickup_code=red.pickup_code, actor=STAFF)
            return cancel_redemption(session, redemption_id=red.id, actor=STAFF)

        results = await run_all(world, 6, act)
        assert sum(1 for r in results if not isinstance(r, str)) == 1
        assert {r for r in results if isinstance(r, str)} == {"timebank.redemption_not_open"}
        async with world.factory() as session:
            final = await session.get(Redemption, red.id)
            stock = await session.scalar(select(Reward.stock).where(Reward.id == reward_id))
            balance = await user_balance(session, u)
        fulfilled = sum(1 for r in results if not isinstance(r, str) and r.status == "fulfilled")
        assert final.status == ("fulfilled" if fulfilled else "cancelled")
        await ledger_ok()
    async with world.factory() as session:
        done = await session.scalar(
            select(func.count()).select_from(Redemption).where(Redemption.status == "fulfilled")
        )
    assert stock == 5 - done and balance == 100 - 10 * done


async def test_batches_of_earnings_in_any_order_do_not_deadlock(world, ledger_ok) -> None:
    """Finishing two activities at once credits the same volunteers in different orders."""
    users = world.users[:4]

    def batch(session, i: int):
        async def credit_all() -> None:
            order = users if i % 2 else list(reversed(users))
            for u in order:
                await earn_points(
                    session, user_id=u, amount=5, key=f"b:{i}:{u}", reason="活动", actor="s"
                )

        return credit_all()

    results = await run_all(world, 12, batch)
    assert results == [None] * 12
    async with world.factory() as session:
        assert [await user_balance(session, u) for u in users] == [60] * 4
    await ledger_ok()


async def test_locked_batches_and_transfers_do_not_deadlock(world, ledger_ok) -> None:
    users = world.users[:4]
    async with transaction(world.factory) as session:
        for u in users:
            await earn_points(session, user_id=u, amount=500, key=f"s:{u}", reason="r", actor="s")
            for v in users:
                if u != v:
                    session.add(FamilyLink(user_id=u, relative_id=v))

    def work(session, i: int):
        async def batch() -> None:
            accounts = [pool_account(world.community_id), *map(user_account, users)]
            await lock_accounts(session, accounts)
            for u in users if i % 4 == 1 else reversed(users):
                await earn_points(
                    session, user_id=u, amount=5, key=f"b:{i}:{u}", reason="活动", actor="s"
                )
                await asyncio.sleep(0.005)  # the notices a real batch writes in between

        if i % 2:
            return batch()
        a, b = users[i % 4], users[(i + 1) % 4]
        return transfer_points(session, from_user_id=a, to_user_id=b, amount=3, key=f"t:{i}")

    results = await run_all(world, 24, work)
    assert not any(isinstance(r, str) for r in results), results
    async with world.factory() as session:
        total = sum([await user_balance(session, u) for u in users])
    assert total == 4 * 500 + 12 * 4 * 5
    await ledger_ok()


async def test_one_code_links_once(world) -> None:
    a, b, c, d = world.users[:4]
    async with transaction(world.factory) as session:
        code = (await create_family_code(session, a)).code
        other = (await create_family_code(session, b)).code  # b links a too, with b's code

    def enter(session, i: int):
        if i == 3:
            return link_family(session, user_id=a, code=other)
        return link_family(session, user_id=(b, c, d)[i], code=code)

    results = await run_all(world, 4, enter)
    by_code = results[:3]
    assert sum(1 for r in by_code if not isinstance(r, str)) == 1  # a's code: used once
    assert sorted(r for r in by_code if isinstance(r, str)) == ["timebank.family_code_used"] * 2
    b_won = not isinstance(results[0], str)
    # a entering b's code links them, unless b has just linked them with a's code.
    assert (results[3] == "timebank.family_already") == b_won
    async with world.factory() as session:
        links = (await session.execute(select(FamilyLink.user_id, FamilyLink.relative_id))).all()
    assert len(links) == (2 if b_won else 4)
