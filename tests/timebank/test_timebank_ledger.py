"""Double entry: earning, replays, reversals, adjustments, history; refusals change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from community.audit import Actor
from community.catalog import t
from community.errors import DomainError, Forbidden
from community.timebank import (
    InsufficientPoints,
    Leg,
    adjust_points,
    create_family_code,
    earn_points,
    link_family,
    post_transaction,
    reverse_transaction,
    transfer_points,
    user_account,
    user_balance,
    user_history,
)
from storage.db import transaction
from storage.models import AuditLog, LedgerAccount, LedgerEntry, LedgerTransaction

STAFF = Actor("staff", "dash:1")


async def earn(world, user: int, amount: int, key: str) -> LedgerTransaction:
    async with transaction(world.factory) as session:
        return await earn_points(
            session, user_id=user, amount=amount, key=key, reason="社区清扫", actor="system"
        )


async def refused(world, snapshot, action, error=DomainError) -> DomainError:
    """Run ``action`` the way the bot does (catch the refusal, commit the rest): no change."""
    before = await snapshot()
    async with transaction(world.factory) as session:
        with pytest.raises(error) as caught:
            await action(session)
    assert await snapshot() == before
    assert t(caught.value.key, **caught.value.params)  # every refusal has its Chinese text
    return caught.value


async def test_earn_credits_from_the_pool_and_balances(world, ledger_ok) -> None:
    u = world.users[0]
    txn = await earn(world, u, 30, "act:1:u")
    assert txn.kind == "earn" and txn.reason == "社区清扫"
    async with world.factory() as session:
        assert await user_balance(session, u) == 30
        pool = await session.scalar(
            select(LedgerAccount).where(LedgerAccount.code == f"pool:{world.community_id}")
        )
        assert pool.balance == -30 and pool.allow_negative
        entries = (
            await session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == txn.id))
        ).all()
        assert sorted(e.amount for e in entries) == [-30, 30]
        audit = await session.scalar(select(AuditLog).where(AuditLog.target == f"ledger:{txn.id}"))
        assert audit.action == "timebank.earn" and audit.actor == "system"
        assert await user_balance(session, world.users[1]) == 0  # never posted: 0
    await ledger_ok()


async def test_replayed_key_returns_the_original_and_posts_nothing(
    world, snapshot, ledger_ok
) -> None:
    u = world.users[0]
    first = await earn(world, u, 30, "act:1:u")
    before = await snapshot()
    again = await earn(world, u, 30, "act:1:u")
    assert again.id == first.id
    assert await snapshot() == before
    # The same key asking for something else is refused, not silently answered.
    error = await refused(
        world,
        snapshot,
        lambda s: earn_points(s, user_id=u, amount=99, key="act:1:u", reason="x", actor="system"),
    )
    assert error.key == "timebank.key_conflict"
    await ledger_ok()


async def test_bad_input_is_refused_before_any_write(world, snapshot) -> None:
    u = world.users[0]
    for amount in (0, -5, 2.5, True):
        error = await refused(
            world,
            snapshot,
            lambda s, a=amount: earn_points(
                s, user_id=u, amount=a, key="k", reason="r", actor="system"
            ),
        )
        assert error.key == "timebank.bad_amount"
    error = await refused(
        world,
        snapshot,
        lambda s: earn_points(s, user_id=u, amount=5, key="k", reason="  ", actor="system"),
    )
    assert error.key == "timebank.reason_required"
    error = await refused(
        world,
        snapshot,
        lambda s: post_transaction(
            s,
            key="k",
            kind="grant",
            reason="r",
            actor="system",
            legs=[Leg(user_account(u), 5), Leg(user_account(world.users[1]), -4)],
        ),
    )
    assert error.key == "timebank.unbalanced"
    error = await refused(
        world,
        snapshot,
        lambda s: earn_points(s, user_id=999_999, amount=5, key="k", reason="r", actor="system"),
    )
    assert error.key == "timebank.user_not_found"


async def test_post_transaction_refuses_an_overdraft(world, snapshot, ledger_ok) -> None:
    a, b = world.users[0], world.users[1]
    await earn(world, a, 10, "e1")
    error = await refused(
        world,
        snapshot,
        lambda s: post_transaction(
            s,
            key="p1",
            kind="grant",
            reason="r",
            actor="system",
            legs=[Leg(user_account(a), -11), Leg(user_account(b), 11)],
        ),
        InsufficientPoints,
    )
    assert error.key == "timebank.insufficient" and error.params == {"need": 11, "have": 10}
    await ledger_ok()


async def test_reversal_mirrors_once_and_cannot_itself_be_reversed(
    world, snapshot, ledger_ok
) -> None:
    u = world.users[0]
    txn = await earn(world, u, 30, "e1")
    async with transaction(world.factory) as session:
        rev = await reverse_transaction(
            session, txn.id, key="rev:e1", reason="登记错了", actor=STAFF
        )
        assert rev.kind == "reversal" and rev.reverses_id == txn.id
        assert await user_balance(session, u) == 0
    async with transaction(world.factory) as session:  # replay of the same reversal
        again = await reverse_transaction(session, txn.id, key="rev:e1", reason="x", actor=STAFF)
        assert again.id == rev.id
    error = await refused(
        world,
        snapshot,
        lambda s: reverse_transaction(
            s, txn.id, key="rev:e1:second", reason="再冲一次", actor=STAFF
        ),
    )
    assert error.key == "timebank.already_reversed"
    error = await refused(
        world,
        snapshot,
        lambda s: reverse_transaction(s, rev.id, key="rev:rev", reason="冲正的冲正", actor=STAFF),
    )
    assert error.key == "timebank.reverse_reversal"
    error = await refused(
        world,
        snapshot,
        lambda s: reverse_transaction(s, 987654, key="rev:none", reason="r", actor=STAFF),
    )
    assert error.key == "timebank.txn_not_found"
    await ledger_ok()


async def test_reversing_points_already_spent_would_overdraw_and_is_refused(
    world, snapshot, ledger_ok
) -> None:
    a, b = world.users[0], world.users[1]
    earned = await earn(world, a, 50, "e1")
    async with transaction(world.factory) as session:
        code = await create_family_code(session, b)
        await link_family(session, user_id=a, code=code.code)
        await transfer_points(session, from_user_id=a, to_user_id=b, amount=40, key="t1")
    await refused(
        world,
        snapshot,
        lambda s: reverse_transaction(s, earned.id, key="rev:e1", reason="r", actor=STAFF),
        InsufficientPoints,
    )
    await ledger_ok()


async def test_staff_adjustment_needs_staff_and_a_reason(world, snapshot, ledger_ok) -> None:
    u = world.users[0]
    error = await refused(
        world,
        snapshot,
        lambda s: adjust_points(s, user_id=u, amount=20, reason="", actor=STAFF, key="adj1"),
    )
    assert error.key == "timebank.reason_required"
    await refused(
        world,
        snapshot,
        lambda s: adjust_points(
            s, user_id=u, amount=20, reason="补记", actor=Actor("resident", str(u)), key="adj1"
        ),
        Forbidden,
    )
    await refused(
        world,
        snapshot,
        lambda s: adjust_points(
            s, user_id=u, amount=20, reason="补记", actor="org:1/dash:2", key="adj1"
        ),
        Forbidden,
    )
    async with transaction(world.factory) as session:
        txn = await adjust_points(
            session, user_id=u, amount=20, reason="补记上月活动", actor=STAFF, key="adj1"
        )
        assert txn.kind == "adjustment" and txn.actor == "staff:dash:1"
    await refused(
        world,
        snapshot,
        lambda s: adjust_points(s, user_id=u, amount=-21, reason="多记了", actor=STAFF, key="adj2"),
        InsufficientPoints,
    )
    async with transaction(world.factory) as s:
        await adjust_points(
            s, user_id=u, amount=-5, reason="多记了", actor="admin:dash:9", key="adj3"
        )
        assert await user_balance(s, u) == 15
        audit = await s.scalar(
            select(AuditLog).where(AuditLog.action == "timebank.adjustment").order_by(AuditLog.id)
        )
        assert audit.detail["reason"] == "补记上月活动" and audit.actor == "staff:dash:1"
    await ledger_ok()


async def test_history_lists_reasons_and_running_balance(world) -> None:
    u = world.users[0]
    first = await earn(world, u, 30, "e1")
    await earn(world, u, 12, "e2")
    async with transaction(world.factory) as session:
        await reverse_transaction(session, first.id, key="r1", reason="重复登记", actor=STAFF)
    async with world.factory() as session:
        lines = await user_history(session, u)
        assert [(x.kind, x.amount, x.balance_after) for x in lines] == [
            ("reversal", -30, 12),
            ("earn", 12, 42),
            ("earn", 30, 30),
        ]
        assert lines[0].reason == "重复登记" and lines[1].reason == "社区清扫"
        assert [x.kind for x in await user_history(session, u, limit=1)] == ["reversal"]
        assert await user_history(session, world.users[1]) == []
