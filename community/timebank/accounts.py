"""Ledger accounts: their codes, and opening them on first use.

Codes: ``user:<id>`` (a resident, never below zero), ``pool:<community>`` (the community's
issuing pool, the only kind allowed to go negative: its balance is minus the points in
circulation), ``org:<id>`` (a provider organization: credited with the points of the
rewards it hands out, so "how many points did X honour" is one balance), and
``rewards:<community>`` (the sink for the community's own reward stock, no provider).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.timebank.common import dialect_insert
from storage.models import LedgerAccount

ACCOUNTS = LedgerAccount.__table__
_LOOKUP = select(ACCOUNTS.c.code, ACCOUNTS.c.id, ACCOUNTS.c.allow_negative).where(
    ACCOUNTS.c.code.in_(bindparam("codes", expanding=True))
)
_LOCK_ORDERED = (  # ledger.lock_order: issuing pools first, then by id
    select(ACCOUNTS.c.id)
    .where(ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(ACCOUNTS.c.allow_negative.desc(), ACCOUNTS.c.id)
    .with_for_update(key_share=True)  # FOR NO KEY UPDATE
)
_BALANCE_BY_CODE = select(ACCOUNTS.c.balance).where(ACCOUNTS.c.code == bindparam("code"))


@dataclass(frozen=True)
class Account:
    """How to find, or open on first use, one ledger account."""

    code: str
    kind: str
    user_id: int | None = None
    org_id: int | None = None
    community_id: int | None = None
    allow_negative: bool = False


def user_account(user_id: int) -> Account:
    return Account(f"user:{user_id}", "resident", user_id=user_id)


def pool_account(community_id: int) -> Account:
    """The community's issuing pool: earned points come from here (it goes negative)."""
    return Account(f"pool:{community_id}", "pool", community_id=community_id, allow_negative=True)


def org_account(org_id: int) -> Account:
    return Account(f"org:{org_id}", "org", org_id=org_id)


def rewards_account(community_id: int | None) -> Account:
    """Sink for rewards without a provider organization (the community's own stock)."""
    return Account(f"rewards:{community_id or 0}", "rewards", community_id=community_id)


async def ensure_accounts(
    session: AsyncSession, accounts: Iterable[Account]
) -> dict[str, tuple[int, bool]]:
    """code → (id, allow_negative), opening missing accounts (safe against a concurrent open)."""
    wanted = {a.code: a for a in accounts}
    found = await lookup_accounts(session, wanted)
    # Sorted: two transactions opening the same new accounts take the index entries in
    # the same order, so they cannot deadlock on them.
    missing = sorted((a for code, a in wanted.items() if code not in found), key=lambda a: a.code)
    if missing:
        now = clock.now()
        rows = [
            {
                "code": a.code,
                "kind": a.kind,
                "user_id": a.user_id,
                "org_id": a.org_id,
                "community_id": a.community_id,
                "balance": 0,
                "allow_negative": a.allow_negative,
                "created_at": now,
            }
            for a in missing
        ]
        stmt = dialect_insert(session, ACCOUNTS).values(rows)
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["code"]))
        found.update(await lookup_accounts(session, {a.code: a for a in missing}))
    return found


async def lookup_accounts(
    session: AsyncSession, wanted: dict[str, Any]
) -> dict[str, tuple[int, bool]]:
    if not wanted:
        return {}
    conn = await session.connection()
    rows = await conn.execute(_LOOKUP, {"codes": list(wanted)})
    return {code: (aid, bool(neg)) for code, aid, neg in rows}


async def account_balance(session: AsyncSession, code: str) -> int:
    """The cached balance of an account (0 for one never opened)."""
    conn = await session.connection()
    return int(await conn.scalar(_BALANCE_BY_CODE, {"code": code}) or 0)


async def lock_accounts(session: AsyncSession, accounts: Iterable[Account]) -> dict[str, int]:
    """Open and lock (FOR NO KEY UPDATE) these accounts now, in the global lock order.

    For a caller about to post several transactions in one database transaction (e.g.
    crediting every attendee of an activity): holding all its rows from the start, taken
    in the same order as every single posting takes them, it cannot deadlock with a
    concurrent transfer or batch. On SQLite (writers serialized) it only opens accounts.
    """
    found = await ensure_accounts(session, accounts)
    conn = await session.connection()
    # PostgreSQL locks the rows as they leave the sort, i.e. in this ORDER BY.
    await conn.execute(_LOCK_ORDERED, {"ids": [row[0] for row in found.values()]})
    return {code: row[0] for code, row in found.items()}
