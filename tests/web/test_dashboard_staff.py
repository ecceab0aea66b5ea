"""community.staff: account creation rules, authentication, password change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from community.errors import DomainError
from community.staff import authenticate, create_staff, set_password
from storage.db import transaction
from storage.models import AuditLog, StaffAccount
from tests.web.test_dashboard_support import SEEDER, Seed, dashboard_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with dashboard_env(tmp_path) as pair:
        yield pair


async def test_create_staff_hashes_and_audits(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with transaction(app.state.runtime.factory) as session:
        account, password = await create_staff(
            session, "Li.Hua", "staff", community_id=s.community_x, actor=SEEDER
        )
    assert account.username == "li.hua" and len(password) >= 16
    assert account.password_hash.startswith("$argon2id$") and password not in account.password_hash
    async with transaction(app.state.runtime.factory) as session:
        assert await authenticate(session, "LI.HUA", password) is not None
        logs = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "staff_create"))
        )
        assert logs and all(password not in str(log.detail) for log in logs)


@pytest.mark.parametrize(
    ("username", "role", "extra", "key"),
    [
        ("admin", "staff", {}, "dash.error.username_taken"),
        ("org-c", "org", {}, "dash.error.org_required"),
        ("boss", "root", {}, "dash.error.bad_role"),
        ("有空格 的名字", "staff", {}, "dash.error.bad_username"),
        ("x-staff", "staff", {"community_id": 999}, "dash.error.unknown_community"),
    ],
)
async def test_create_staff_rejects(
    env: tuple[FastAPI, Seed], username: str, role: str, extra: dict[str, int], key: str
) -> None:
    app, _ = env
    with pytest.raises(DomainError) as raised:
        async with transaction(app.state.runtime.factory) as session:
            await create_staff(session, username, role, actor=SEEDER, **extra)
    assert raised.value.key == key


async def test_authenticate_updates_last_login_and_rejects_inactive(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    async with transaction(app.state.runtime.factory) as session:
        account = await authenticate(session, "org-a", s.passwords["org-a"])
        assert account is not None and account.last_login_at is not None
        assert await authenticate(session, "org-a", "wrong") is None
        assert await authenticate(session, "ghost", "whatever") is None
        account.active = False
    async with transaction(app.state.runtime.factory) as session:
        assert await authenticate(session, "org-a", s.passwords["org-a"]) is None


async def test_set_password(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with transaction(app.state.runtime.factory) as session:
        staff_id = await session.scalar(
            select(StaffAccount.id).where(StaffAccount.username == "admin")
        )
        assert staff_id is not None
        with pytest.raises(DomainError):
            await set_password(session, staff_id, "short", actor=SEEDER)
        await set_password(session, staff_id, "a-long-new-password", actor=SEEDER)
    async with transaction(app.state.runtime.factory) as session:
        assert await authenticate(session, "admin", s.passwords["admin"]) is None
        assert await authenticate(session, "admin", "a-long-new-password") is not None
