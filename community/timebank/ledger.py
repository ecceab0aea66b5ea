"""The double-entry core: one balanced, idempotent posting per call.

A posting runs inside a SAVEPOINT of the caller's transaction, so a refusal (overdraft,
reused key, concurrent reversal) undoes exactly this posting and leaves the caller's
transaction usable: the bot catches DomainError and still commits its dialog state.

Order of statements in a posting (PostgreSQL, READ COMMITTED):
1. INSERT the transaction ON CONFLICT (idempotency_key) DO NOTHING — it claims the key; a
   concurrent holder of the same key makes it wait, then it returns nothing: a replay.
2. INSERT the entries and the audit row (foreign keys take KEY SHARE on the account rows,
   which never conflicts with another posting's NO KEY UPDATE).
3. One conditional UPDATE per account — ``balance + :amt >= 0`` unless the account may go
   negative; rowcount 0 means overdraft — in one global order, ``lock_order``: issuing
   pools first, then every other account by id.

Why pools first: callers post several earnings in one transaction (finishing an activity
credits every attendee). Taking the community's pool first makes it a mutex for such
batches, so two batches with the same volunteers in a different order queue instead of
deadlocking (pool last deadlocked them). The pool row is then held one UPDATE longer per
posting, a fraction of a millisecond. A batch that may meet concurrent transfers between
its own residents locks all its accounts up front with ``lock_accounts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from community import clock
from community.audit import Actor
from community.errors import DomainError, NotFound
from community.timebank.accounts import ACCOUNTS, Account, ensure_accounts, lookup_accounts
from community.timebank.common import as_actor, check_reason
from storage.models import AuditLog, LedgerEntry, LedgerTransaction

KINDS = frozenset({"earn", "spend", "transfer", "reversal", "adjustment", "grant"})


class InsufficientPoints(DomainError):
    """Not enough points: ``need`` is what the posting takes, ``have`` the balance."""

    def __init__(self, *, need: int, have: int) -> None:
        super().__init__("timebank.insufficient", need=need, have=have)


@dataclass(frozen=True)
class Leg:
    """One side of a posting: an account (spec or existing id) and a signed amount."""

    account: Account | int
    amount: int


class Posted(NamedTuple):
    txn: LedgerTransaction
    created: bool  # False: the key was already used, ``txn`` is the original


ENTRIES = LedgerEntry.__table__
TXNS = LedgerTransaction.__table__
# Built once; only the values change per posting.
_INSERT_ENTRY = ENTRIES.insert()
_INSERT_AUDIT = AuditLog.__table__.insert()
_BALANCE = select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == bindparam("aid"))
_APPLY = (
    update(ACCOUNTS)
    .where(
        ACCOUNTS.c.id == bindparam("aid"),
        or_(
            ACCOUNTS.c.allow_negative,
            ACCOUNTS.c.balance + bindparam("amt", type_=BigInteger) >= 0,
        ),
    )
    .values(balance=ACCOUNTS.c.balance + bindparam("amt", type_=BigInteger))
)


def lock_order(account_id: int, allow_negative: bool) -> tuple[int, int]:
    """The one order in which every transaction locks accounts (see the module docstring)."""
    return (0 if allow_negative else 1, account_id)


@cache
def _claim(dialect_name: str) -> Any:
    """INSERT the transaction row unless its key exists; returns the new id (or nothing)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(TXNS).on_conflict_do_nothing(index_elements=["idempotency_key"])
    return stmt.returning(TXNS.c.id)


def _check_legs(legs: Sequence[Leg]) -> None:
    for leg in legs:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise DomainError("timebank.bad_amount")
    if sum(leg.amount for leg in legs) != 0:
        raise DomainError("timebank.unbalanced")


async def post(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    reason: str,
    actor: str | Actor,
    legs: Sequence[Leg],
    ref_type: str | None = None,
    ref_id: str | None = None,
    detail: dict[str, Any] | None = None,
    reverses_id: int | None = None,
    now: datetime | None = None,
) -> Posted:
    """Post one balanced transaction (or return the original for a used key).

    ``now`` stamps the rows (default: the clock); transfers pass the moment their daily
    limit was computed for, so the limit and the stamps agree.
    """
    if not key or not key.strip() or len(key) > 160:
        raise DomainError("timebank.bad_key")
    if kind not in KINDS:
        raise DomainError("timebank.bad_kind")
    reason = check_reason(reason)
    _check_legs(legs)
    who = as_actor(actor)
    claimed: list[LedgerTransaction] = []
    try:
        async with session.begin_nested():
            return await _post_in_savepoint(
                session,
                key,
                kind,
                reason,
                who,
                legs,
                ref_type,
                ref_id,
                detail,
                reverses_id,
                now or clock.now(),
                claimed,
            )
    except BaseException:
        # The savepoint is gone; so must be the object of its row (SQLite may reuse the id).
        for txn in claimed:
            if txn in session:
                session.expunge(txn)
        raise


async def _post_in_savepoint(
    session: AsyncSession,
    key: str,
    kind: str,
    reason: str,
    who: Actor,
    legs: Sequence[Leg],
    ref_type: str | None,
    ref_id: str | None,
    detail: dict[str, Any] | None,
    reverses_id: int | None,
    now: datetime,
    claimed: list[LedgerTransaction],
) -> Posted:
    # Core statements on the session's connection, built once: this is the hot path, and
    # the ORM's per-statement overhead was most of its cost (measured, bench_ledger.py).
    conn = await session.connection()
    values = {
        "idempotency_key": key,
        "kind": kind,
        "reason": reason,
        "actor": who.label[:64],
        "reverses_id": reverses_id,
        "ref_type": ref_type,
        "ref_id": ref_id,
        "detail": detail or {},
        "created_at": now,
    }
    txn_id = (await conn.execute(_claim(conn.dialect.name), values)).scalar()
    if txn_id is None:
        return Posted(await _replayed(session, key, kind, legs), False)
    # The new row as a loaded ORM object, without reading it back.
    txn = LedgerTransaction(id=txn_id, **values)
    make_transient_to_detached(txn)
    session.add(txn)
    claimed.append(txn)

    resolved = await _resolve(session, legs)
    moves: dict[int, int] = {}
    for leg in legs:
        aid = resolved[leg.account.code if isinstance(leg.account, Account) else leg.account][0]
        moves[aid] = moves.get(aid, 0) + leg.amount
    guarded = {aid: not neg for aid, neg in resolved.values()}
    moves = {aid: amt for aid, amt in moves.items() if amt != 0}
    if len(moves) < 2:
        raise DomainError("timebank.nothing_to_post")
    await conn.execute(
        _INSERT_ENTRY,
        [
            {"transaction_id": txn_id, "account_id": aid, "amount": amt, "created_at": now}
            for aid, amt in moves.items()
        ],
    )
    await conn.execute(
        _INSERT_AUDIT,
        {
            "actor": who.label[:64],
            "action": f"timebank.{kind}",
            "target": f"ledger:{txn_id}",
            "detail": {
                "key": key,
                "reason": reason,
                "moves": {str(a): m for a, m in moves.items()},
            },
            "created_at": now,
        },
    )
    for aid in sorted(moves, key=lambda a: lock_order(a, not guarded[a])):
        result = await conn.execute(_APPLY, {"aid": aid, "amt": moves[aid]})
        if result.rowcount != 1:
            have = await conn.scalar(_BALANCE, {"aid": aid})
            raise InsufficientPoints(need=-moves[aid], have=int(have or 0))
    return Posted(txn, True)


async def _resolve(session: AsyncSession, legs: Sequence[Leg]) -> dict[str | int, tuple[int, bool]]:
    """Every leg's account → (id, allow_negative); specs are opened when missing."""
    specs = [g.account for g in legs if isinstance(g.account, Account)]
    ids = [g.account for g in legs if not isinstance(g.account, Account)]
    out: dict[str | int, tuple[int, bool]] = dict(await ensure_accounts(session, specs))
    if ids:
        rows = await session.execute(
            select(ACCOUNTS.c.id, ACCOUNTS.c.allow_negative).where(ACCOUNTS.c.id.in_(ids))
        )
        out.update({aid: (aid, bool(neg)) for aid, neg in rows})
        if any(i not in out for i in ids):
            raise NotFound("timebank.account_not_found")
    return out


async def _replayed(
    session: AsyncSession, key: str, kind: str, legs: Sequence[Leg]
) -> LedgerTransaction:
    """The original transaction of a reused key, if the replay asks for the same posting."""
    txn = await session.scalar(
        select(LedgerTransaction)
        .where(LedgerTransaction.idempotency_key == key)
        .execution_options(populate_existing=True)
    )
    assert txn is not None  # the insert conflicted on this key, so it exists
    rows = await session.execute(
        select(ENTRIES.c.account_id, ENTRIES.c.amount).where(ENTRIES.c.transaction_id == txn.id)
    )
    stored = sorted((aid, amt) for aid, amt in rows)
    ids = await lookup_accounts(
        session, {g.account.code: g for g in legs if isinstance(g.account, Account)}
    )
    asked: dict[int, int] = {}
    for leg in legs:
        if isinstance(leg.account, Account):
            if leg.account.code not in ids:
                raise DomainError("timebank.key_conflict")
            aid = ids[leg.account.code][0]
        else:
            aid = leg.account
        asked[aid] = asked.get(aid, 0) + leg.amount
    if txn.kind != kind or stored != sorted((a, m) for a, m in asked.items() if m):
        raise DomainError("timebank.key_conflict")
    return txn


async def post_transaction(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    reason: str,
    actor: str | Actor,
    legs: Sequence[Leg],
    ref_type: str | None = None,
    ref_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Post a balanced transaction; a replayed key returns the original, posting nothing."""
    return (
        await post(
            session,
            key=key,
            kind=kind,
            reason=reason,
            actor=actor,
            legs=legs,
            ref_type=ref_type,
            ref_id=ref_id,
            detail=detail,
        )
    ).txn
