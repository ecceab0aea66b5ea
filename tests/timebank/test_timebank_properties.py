"""Property test: any sequence of earn / spend / transfer / reverse / cancel / adjust / replay
keeps the ledger zero-sum, every balance equal to the sum of its entries, and agrees with a
plain Python model of the rules; replays change nothing.

Each example gets three fresh residents (and fresh keys) in one shared database, so the
global invariants are checked over everything posted so far. Every operation runs in its
own transaction the way the bot runs it: a refusal is caught and the transaction commits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from community.audit import Actor
from community.errors import DomainError
from community.timebank import (
    adjust_points,
    cancel_redemption,
    create_reward,
    earn_points,
    redeem_reward,
    reverse_transaction,
    transfer_points,
    user_balance,
)
from storage.db import transaction
from storage.models import FamilyLink, LedgerTransaction, Reward, User

STAFF = Actor("staff", "dash:1")
NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
LIMIT = 200
PRICES = (15, 40)
STOCKS = (2, 1)

user_ix = st.integers(0, 2)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), user_ix, st.integers(1, 100)),
        st.tuples(st.just("earn"), user_ix, st.integers(1, 100)),  # twice: more to spend
        st.tuples(st.just("spend"), user_ix, st.integers(0, 1)),
        st.tuples(st.just("transfer"), user_ix, user_ix, st.integers(1, 90)),
        st.tuples(st.just("adjust"), user_ix, st.integers(-40, 40).filter(bool)),
        st.tuples(st.just("reverse"), st.integers(0, 8)),
        st.tuples(st.just("cancel"), st.integers(0, 3)),
        st.tuples(st.just("replay"), st.integers(0, 8)),
    ),
    min_size=4,
    max_size=30,
)


@dataclass
class Model:
    users: list[int]
    rewards: list[int]
    balance: dict[int, int] = field(default_factory=dict)
    stock: list[int] = field(default_factory=lambda: list(STOCKS))
    sent: dict[int, int] = field(default_factory=dict)
    # postings: (txn id, kind, {user: delta}); reversed: txn ids already reversed
    postings: list[tuple[int, str, dict[int, int]]] = field(default_factory=list)
    reversed: set[int] = field(default_factory=set)
    redemptions: list[dict[str, Any]] = field(default_factory=list)
    done: list[tuple[Any, int]] = field(default_factory=list)  # (the call, first result id)
    posted: int = 0
    stats: Counter[str] = field(default_factory=Counter)


async def fresh(world) -> Model:
    async with transaction(world.factory) as session:
        users = [User(display_name=f"居民{i}", community_id=world.community_id) for i in range(3)]
        session.add_all(users)
        await session.flush()
        ids = [u.id for u in users]
        session.add_all(FamilyLink(user_id=a, relative_id=b) for a in ids for b in ids if a != b)
        rewards = [
            await create_reward(
                session,
                title=f"奖品{i}",
                price=p,
                stock=s,
                actor=STAFF,
                provider_org_id=world.org_id if i == 0 else None,
            )
            for i, (p, s) in enumerate(zip(PRICES, STOCKS, strict=True))
        ]
        return Model(users=ids, rewards=[r.id for r in rewards], balance=dict.fromkeys(ids, 0))


async def attempt(world, call) -> Any:
    async with transaction(world.factory) as session:
        try:
            return await call(session)
        except DomainError as exc:
            return exc.key


def expect_post(m: Model, deltas: dict[int, int]) -> str | None:
    if any(m.balance[u] + d < 0 for u, d in deltas.items()):
        return "timebank.insufficient"
    return None


async def step(world, m: Model, op: tuple[Any, ...], key: str) -> None:
    name = op[0]
    if name == "earn":
        _, i, amount = op
        u = m.users[i]

        def call(s):
            return earn_points(s, user_id=u, amount=amount, key=key, reason="r", actor="system")

        await book(world, m, call, None, {u: amount}, "earn")
    elif name == "adjust":
        _, i, amount = op
        u = m.users[i]

        def call(s):
            return adjust_points(s, user_id=u, amount=amount, reason="更正", actor=STAFF, key=key)

        await book(world, m, call, expect_post(m, {u: amount}), {u: amount}, "adjustment")
    elif name == "transfer":
        _, i, j, amount = op
        a, b = m.users[i], m.users[j]

        def call(s):
            return transfer_points(s, from_user_id=a, to_user_id=b, amount=amount, key=key, now=NOW)

        if a == b:
            want: str | None = "timebank.transfer_self"
        elif m.sent.get(a, 0) + amount > LIMIT:
            want = "timebank.transfer_limit"
        else:
            want = expect_post(m, {a: -amount, b: amount})
        if await book(world, m, call, want, {a: -amount, b: amount}, "transfer"):
            m.sent[a] = m.sent.get(a, 0) + amount
    elif name == "spend":
        _, i, r = op
        u, price = m.users[i], PRICES[r]

        def call(s):
            return redeem_reward(s, user_id=u, reward_id=m.rewards[r], key=key)

        want = "timebank.out_of_stock" if m.stock[r] == 0 else expect_post(m, {u: -price})
        got = await book(world, m, call, want, {u: -price}, "spend")
        if got:
            m.stock[r] -= 1
            m.redemptions.append({"id": got.id, "user": u, "reward": r, "open": True})
    elif name == "reverse" and m.postings:
        txn_id, kind, deltas = m.postings[op[1] % len(m.postings)]

        def call(s):
            return reverse_transaction(s, txn_id, key=key, reason="冲正", actor=STAFF)

        undo = {u: -d for u, d in deltas.items()}
        if kind == "reversal":
            want = "timebank.reverse_reversal"
        elif kind == "spend":
            want = "timebank.use_cancel"
        elif txn_id in m.reversed:
            want = "timebank.already_reversed"
        else:
            want = expect_post(m, undo)
        if await book(world, m, call, want, undo, "reversal"):
            m.reversed.add(txn_id)
    elif name == "cancel" and m.redemptions:
        red = m.redemptions[op[1] % len(m.redemptions)]
        got = await attempt(
            world, lambda s: cancel_redemption(s, redemption_id=red["id"], actor=STAFF)
        )
        if not red["open"]:
            assert got == "timebank.redemption_not_open"
            return
        assert not isinstance(got, str), got
        red["open"] = False
        m.stock[red["reward"]] += 1
        m.balance[red["user"]] += PRICES[red["reward"]]
        m.posted += 1
        m.reversed.add(got.transaction_id)
        m.stats["cancel"] += 1
    elif name == "replay" and m.done:
        call, first_id = m.done[op[1] % len(m.done)]
        before = dict(m.balance), list(m.stock), m.posted
        got = await attempt(world, call)
        assert not isinstance(got, str) and got.id == first_id, got
        assert (dict(m.balance), list(m.stock), m.posted) == before
        m.stats["replay"] += 1


async def book(world, m: Model, call, want: str | None, deltas: dict[int, int], kind: str) -> Any:
    """Run ``call`` and compare with the model's answer; on success book it in the model."""
    got = await attempt(world, call)
    if want is not None:
        assert got == want, (kind, got, want)
        m.stats[want] += 1
        return None
    assert not isinstance(got, str), (kind, got)
    for u, d in deltas.items():
        m.balance[u] += d
    txn_id = got.transaction_id if kind == "spend" else got.id
    m.postings.append((txn_id, kind, deltas))
    m.done.append((call, got.id))
    m.posted += 1
    m.stats[kind] += 1
    return got


async def run_sequence(world, ops: list[tuple[Any, ...]], seen: Counter[str]) -> None:
    m = await fresh(world)
    tag = uuid.uuid4().hex[:10]
    async with world.factory() as session:
        txns_before = await session.scalar(select(func.count()).select_from(LedgerTransaction))
    for n, op in enumerate(ops):
        await step(world, m, op, f"{tag}:{n}")
    async with world.factory() as session:
        for u in m.users:
            assert await user_balance(session, u) == m.balance[u]
        stock = [
            await session.scalar(select(Reward.stock).where(Reward.id == r)) for r in m.rewards
        ]
        assert stock == m.stock
        txns_after = await session.scalar(select(func.count()).select_from(LedgerTransaction))
        assert txns_after - txns_before == m.posted
    seen.update(m.stats)
    seen["ops"] += len(ops)
    seen["examples"] += 1


# One hand-written sequence that visits every rule, besides the generated ones.
EVERYTHING = [
    ("earn", 0, 60), ("earn", 1, 250), ("spend", 0, 0), ("spend", 0, 1), ("spend", 1, 1),
    ("transfer", 0, 1, 5), ("transfer", 1, 1, 5), ("transfer", 1, 2, 90),
    ("transfer", 1, 2, 90), ("transfer", 1, 2, 90), ("adjust", 2, -200), ("adjust", 2, 3),
    ("reverse", 0), ("reverse", 2), ("reverse", 5), ("reverse", 5), ("reverse", 8),
    ("cancel", 0), ("cancel", 0), ("replay", 0), ("replay", 2), ("replay", 5), ("replay", 8),
]  # fmt: skip


async def test_any_sequence_keeps_the_books(world, ledger_ok) -> None:
    loop = asyncio.get_running_loop()
    examples = 60 if world.backend == "sqlite" else 40

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(ops=OPS)
    @example(ops=EVERYTHING)
    def books_balance(ops: list[tuple[Any, ...]]) -> None:
        # Hypothesis drives from this worker thread; the database work runs on the test's
        # loop (where the engine and its SQLite write lock live).
        asyncio.run_coroutine_threadsafe(run_sequence(world, ops, seen), loop).result()
        asyncio.run_coroutine_threadsafe(ledger_ok(), loop).result()

    seen: Counter[str] = Counter()
    await asyncio.to_thread(books_balance)
    wanted = {"earn", "spend", "transfer", "adjustment", "reversal", "cancel", "replay"}
    wanted |= {f"timebank.{k}" for k in ("insufficient", "out_of_stock", "transfer_self")}
    wanted |= {f"timebank.{k}" for k in ("transfer_limit", "already_reversed", "use_cancel")}
    wanted.add("timebank.reverse_reversal")
    assert wanted <= set(seen), wanted - set(seen)  # the run exercised every rule
