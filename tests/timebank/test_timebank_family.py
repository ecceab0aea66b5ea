"""转赠: family codes (one-time, expiring), links both ways, transfers with a daily limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from community.catalog import t
from community.errors import DomainError
from community.timebank import (
    InsufficientPoints,
    create_family_code,
    earn_points,
    family_members,
    link_family,
    transfer_points,
    user_balance,
    user_history,
)
from storage.db import transaction
from storage.models import Identity, LedgerTransaction, WebMessage

# 23:30 in Beijing on 1 Nov 2026 = 15:30 UTC; midnight in Beijing is 16:00 UTC.
LATE = datetime(2026, 11, 1, 15, 30, tzinfo=UTC)


async def refused(world, snapshot, action, error=DomainError) -> DomainError:
    before = await snapshot()
    async with transaction(world.factory) as session:
        with pytest.raises(error) as caught:
            await action(session)
    assert await snapshot() == before
    assert t(caught.value.key, **caught.value.params)  # every refusal has its Chinese text
    return caught.value


async def link(world, user: int, relative: int) -> None:
    async with transaction(world.factory) as session:
        code = await create_family_code(session, relative)
        await link_family(session, user_id=user, code=code.code)


async def test_code_links_both_ways_once(world, snapshot) -> None:
    a, b, c = world.users[:3]
    async with transaction(world.factory) as session:
        code = await create_family_code(session, b, now=LATE)
        assert len(code.code) == 6 and code.purpose == "family"
        assert code.expires_at == LATE + timedelta(minutes=30)
    async with transaction(world.factory) as session:
        await link_family(session, user_id=a, code=code.code.lower(), now=LATE)
        assert await family_members(session, a) == [(b, "李大爷")]
        assert await family_members(session, b) == [(a, "王阿姨")]
    error = await refused(
        world, snapshot, lambda s: link_family(s, user_id=c, code=code.code, now=LATE)
    )
    assert error.key == "timebank.family_code_used"
    error = await refused(
        world, snapshot, lambda s: link_family(s, user_id=c, code="ABCDEF", now=LATE)
    )
    assert error.key == "timebank.family_code_invalid"


async def test_expired_own_and_duplicate_codes_are_refused(world, snapshot) -> None:
    a, b = world.users[:2]
    async with transaction(world.factory) as session:
        old = await create_family_code(session, b, now=LATE)
        own = await create_family_code(session, a, now=LATE)
    error = await refused(
        world,
        snapshot,
        lambda s: link_family(s, user_id=a, code=old.code, now=LATE + timedelta(minutes=31)),
    )
    assert error.key == "timebank.family_code_expired"
    error = await refused(
        world, snapshot, lambda s: link_family(s, user_id=a, code=own.code, now=LATE)
    )
    assert error.key == "timebank.family_self"
    await link(world, a, b)
    async with transaction(world.factory) as session:
        fresh = await create_family_code(session, a)
    error = await refused(world, snapshot, lambda s: link_family(s, user_id=b, code=fresh.code))
    assert error.key == "timebank.family_already"


async def test_transfer_to_family_with_notice(world, ledger_ok) -> None:
    a, b = world.users[:2]
    await link(world, a, b)
    async with transaction(world.factory) as session:
        session.add(Identity(user_id=b, channel="web", external_id="web-b"))
        await earn_points(session, user_id=a, amount=100, key="e1", reason="r", actor="system")
    async with transaction(world.factory) as session:
        txn = await transfer_points(
            session, from_user_id=a, to_user_id=b, amount=40, key="t1", now=LATE
        )
        assert txn.kind == "transfer" and txn.actor == f"resident:{a}"
        assert await user_balance(session, a) == 60 and await user_balance(session, b) == 40
        again = await transfer_points(
            session, from_user_id=a, to_user_id=b, amount=40, key="t1", now=LATE
        )
        assert again.id == txn.id and await user_balance(session, a) == 60
        [line] = await user_history(session, b)
        assert (line.kind, line.amount, line.reason) == (
            "transfer",
            40,
            "家人转赠：王阿姨 → 李大爷",
        )
        [notice] = (await session.scalars(select(WebMessage))).all()
        assert "40" in notice.text and "王阿姨" in notice.text
    await ledger_ok()


async def test_transfer_refusals_change_nothing(world, snapshot, ledger_ok) -> None:
    a, b, c = world.users[:3]
    await link(world, a, b)
    async with transaction(world.factory) as session:
        await earn_points(session, user_id=a, amount=500, key="e1", reason="r", actor="system")
    cases = [
        (dict(to_user_id=a, amount=10), "timebank.transfer_self"),
        (dict(to_user_id=c, amount=10), "timebank.transfer_not_family"),
        (dict(to_user_id=b, amount=0), "timebank.bad_amount"),
        (dict(to_user_id=b, amount=201), "timebank.transfer_limit"),
        (dict(to_user_id=9999, amount=1), "timebank.user_not_found"),
    ]
    for args, key in cases:
        error = await refused(
            world,
            snapshot,
            lambda s, a_=args: transfer_points(s, from_user_id=a, key="tx", now=LATE, **a_),
        )
        assert error.key == key
    # Not enough points is refused as well (b has none).
    await refused(
        world,
        snapshot,
        lambda s: transfer_points(s, from_user_id=b, to_user_id=a, amount=5, key="tb", now=LATE),
        InsufficientPoints,
    )
    async with world.factory() as session:
        assert (await session.scalars(select(LedgerTransaction.kind))).all() == ["earn"]
    await ledger_ok()


async def test_daily_limit_counts_the_beijing_day(world, snapshot, ledger_ok) -> None:
    a, b = world.users[:2]
    await link(world, a, b)
    async with transaction(world.factory) as session:
        await earn_points(session, user_id=a, amount=500, key="e1", reason="r", actor="system")
    async with transaction(world.factory) as session:
        for i, amount in enumerate((120, 80)):
            await transfer_points(
                session, from_user_id=a, to_user_id=b, amount=amount, key=f"t{i}", now=LATE
            )
        # b giving back does not use a's allowance
        await transfer_points(
            session, from_user_id=b, to_user_id=a, amount=50, key="back", now=LATE
        )
    error = await refused(
        world,
        snapshot,
        lambda s: transfer_points(
            s, from_user_id=a, to_user_id=b, amount=1, key="t3", now=LATE + timedelta(minutes=20)
        ),
    )
    assert error.params == {"limit": 200, "left": 0}
    # A limit given by the caller is respected.
    error = await refused(
        world,
        snapshot,
        lambda s: transfer_points(
            s, from_user_id=b, to_user_id=a, amount=60, key="t4", now=LATE, daily_limit=100
        ),
    )
    assert error.key == "timebank.transfer_limit" and error.params["left"] == 50
    # After midnight in Beijing (16:00 UTC) the allowance is whole again.
    async with transaction(world.factory) as session:
        await transfer_points(
            session,
            from_user_id=a,
            to_user_id=b,
            amount=200,
            key="t5",
            now=LATE + timedelta(minutes=31),
        )
    await ledger_ok()
