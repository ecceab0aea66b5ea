"""Staff and organization accounts of the dashboard: creation, login check, password change.

Passwords are argon2id hashes (argon2-cffi). Hashing costs tens of milliseconds of CPU on
purpose, so it runs in a worker thread: the event loop keeps serving everyone else.
A one-time password is generated here and returned once; it is never stored or logged.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor, record_audit
from community.errors import DomainError, NotFound
from storage.models import Community, Organization, StaffAccount, utcnow

ROLES = frozenset({"admin", "staff", "org"})
MIN_PASSWORD_CHARS = 10
# Letters, digits and . _ @ - : easy to type on a phone, no look-alike whitespace.
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A real hash to verify against when the user is missing, so timing does not tell."""
    return _hasher.hash(secrets.token_urlsafe(16))


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()


def generate_password() -> str:
    """A one-time password: 16 URL-safe characters (~96 bits), readable when copied."""
    return secrets.token_urlsafe(12)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def create_staff(
    session: AsyncSession,
    username: str,
    role: str,
    *,
    community_id: int | None = None,
    org_id: int | None = None,
    actor: Actor,
) -> tuple[StaffAccount, str]:
    """Create an account and return it with its one-time password (shown once, never kept)."""
    username = normalize_username(username)
    if not _USERNAME.match(username):
        raise DomainError("dash.error.bad_username")
    if role not in ROLES:
        raise DomainError("dash.error.bad_role")
    if role == "org":
        if org_id is None:
            raise DomainError("dash.error.org_required")
        org = await session.get(Organization, org_id)
        if org is None or not org.active:
            raise DomainError("error.org_inactive")
    elif org_id is not None:
        raise DomainError("dash.error.bad_role")
    if community_id is not None and await session.get(Community, community_id) is None:
        raise DomainError("dash.error.unknown_community")
    if await session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)):
        raise DomainError("dash.error.username_taken")

    password = generate_password()
    account = StaffAccount(
        username=username,
        password_hash=await hash_password(password),
        role=role,
        community_id=community_id,
        org_id=org_id,
        active=True,
    )
    try:
        # A savepoint: a concurrent duplicate must not poison the caller's transaction.
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError as exc:
        raise DomainError("dash.error.username_taken") from exc
    record_audit(
        session,
        actor,
        "staff_create",
        f"staff:{account.id}",
        {"username": username, "role": role, "community_id": community_id, "org_id": org_id},
    )
    return account, password


async def authenticate(session: AsyncSession, username: str, password: str) -> StaffAccount | None:
    """The active account for these credentials, or None (same work whether or not it exists)."""
    account = await session.scalar(
        select(StaffAccount).where(StaffAccount.username == normalize_username(username))
    )
    stored = account.password_hash if account is not None else _dummy_hash()
    ok = await asyncio.to_thread(_verify, stored, password or "")
    if account is None or not ok or not account.active:
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = await hash_password(password)
    account.last_login_at = utcnow()
    return account


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def set_password(
    session: AsyncSession, staff_id: int, password: str | None = None, *, actor: Actor
) -> str:
    """Set (or, without ``password``, generate) a new password; returns it once."""
    account = await session.get(StaffAccount, staff_id)
    if account is None:
        raise NotFound("dash.error.no_account")
    password = password if password is not None else generate_password()
    if len(password) < MIN_PASSWORD_CHARS:
        raise DomainError("dash.error.weak_password")
    account.password_hash = await hash_password(password)
    record_audit(session, actor, "staff_set_password", f"staff:{account.id}")
    return password


async def get_active_staff(session: AsyncSession, staff_id: int) -> StaffAccount | None:
    """The account behind a dashboard session; a deactivated account loses access at once."""
    account = await session.get(StaffAccount, staff_id)
    return account if account is not None and account.active else None


def actor_for(account: StaffAccount) -> Actor:
    """The audit identity of a dashboard user (org members act as their organization)."""
    if account.role == "org":
        return Actor("org", f"{account.org_id}/dash:{account.id}")
    return Actor(account.role, f"dash:{account.id}")
