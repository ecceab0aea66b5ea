"""Small shared pieces of the time bank: actors, codes, the local day, dialect inserts."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor
from community.errors import DomainError, Forbidden

# Pickup and family codes are read aloud and typed by elderly residents: no 0/O, no 1/I.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
# China has one time zone and no daylight saving: a fixed offset needs no tz database.
CHINA = timezone(timedelta(hours=8))
STAFF_KINDS = frozenset({"staff", "admin"})


def random_code(length: int = 6) -> str:
    """A short code from the unambiguous alphabet (32**6 ≈ 10**9 possibilities)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalize_code(code: str) -> str:
    """What a person typed → the stored form (case and spaces forgiven)."""
    return "".join((code or "").split()).upper()[:16]


def as_actor(actor: str | Actor) -> Actor:
    """Accept an Actor or its label (``staff:dash:3``) — the ledger stores the label."""
    if isinstance(actor, Actor):
        return actor
    kind, _, ident = (actor or "system").partition(":")
    return Actor(kind, ident or None)


def require_staff(actor: Actor) -> None:
    if actor.kind not in STAFF_KINDS:
        raise Forbidden("timebank.staff_only")


def actor_org_id(actor: Actor) -> int | None:
    """The organization an ``org`` actor acts for (ids look like ``3/dash:7``)."""
    if actor.kind != "org" or not actor.id:
        return None
    head = actor.id.split("/", 1)[0]
    return int(head) if head.isdigit() else None


def check_amount(amount: int) -> int:
    """Points are positive whole numbers; anything else is refused before any write."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise DomainError("timebank.bad_amount")
    return amount


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise DomainError("timebank.reason_required")
    return text[:500]


def china_day_start(now: datetime) -> datetime:
    """Midnight (Beijing time) of ``now``'s day, as an aware UTC datetime."""
    local = now.astimezone(CHINA)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def china_date(when: datetime) -> str:
    return when.astimezone(CHINA).strftime("%Y-%m-%d")


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` with ON CONFLICT support for the session's backend."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def is_postgres(session: AsyncSession) -> bool:
    return bool(session.bind.dialect.name == "postgresql")
