"""Shared set-up of the activity, time-bank and check-in page tests, on SQLite and PostgreSQL.

Seed: communities 东区 (X) and 西区 (Y); organization A serves X only, B serves every
community; accounts admin, staff-x, staff-y, org-a, org-b; residents 张三丰, 李四, 王五 in X
and 赵六 in Y, each with a web-chat identity (visitor id ``visitor-<n>``) and a phone, all
subscribed to 养老 (elderly). The clock is frozen on Monday 2026-11-23 10:00 Shanghai time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from community.activities import ActivityDraft, create_activity, publish_activity, sign_up
from community.audit import Actor
from community.clock import FrozenClock, use_clock
from community.orgs import OrgSpec, upsert_organization
from community.staff import create_staff
from linli.settings import Settings
from storage.db import transaction
from storage.models import (
    Activity,
    ActivitySignup,
    Community,
    Identity,
    Street,
    Subscription,
    User,
)
from tests.web.test_dashboard_support import csrf_of, login
from web.app import create_app
from web.visitor import COOKIE

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
SEEDER = Actor("system", "test-seed")
PHONES = ["13812345678", "13987654321", "13700001111", "13600002222"]
NAMES = ["张三丰", "李四", "王五", "赵六"]


@dataclass
class Seed:
    clock: FrozenClock
    community_x: int = 0
    community_y: int = 0
    org_a: int = 0
    org_b: int = 0
    residents: list[int] = field(default_factory=list)  # user ids, in NAMES order
    passwords: dict[str, str] = field(default_factory=dict)

    def visitor(self, index: int) -> str:
        return f"visitor-{index}-abcdef"


async def seed_world(app: FastAPI, clock: FrozenClock) -> Seed:
    s = Seed(clock)
    async with transaction(app.state.runtime.factory) as session:
        street = Street(name="梅园街道")
        session.add(street)
        await session.flush()
        x = Community(street_id=street.id, name="东区社区")
        y = Community(street_id=street.id, name="西区社区")
        session.add_all([x, y])
        await session.flush()
        s.community_x, s.community_y = x.id, y.id
        org_a = await upsert_organization(
            session,
            OrgSpec("夕阳红养老服务中心", "社会组织", ["elderly"], ["东区社区"], ""),
            SEEDER,
        )
        org_b = await upsert_organization(
            session, OrgSpec("康宁健康服务社", "社会组织", ["health"], None, ""), SEEDER
        )
        s.org_a, s.org_b = org_a.id, org_b.id
        for i, (name, phone) in enumerate(zip(NAMES, PHONES, strict=True)):
            user = User(
                display_name=name,
                phone=phone,
                community_id=x.id if i < 3 else y.id,
                consented_at=START,
            )
            session.add(user)
            await session.flush()
            session.add(Identity(user_id=user.id, channel="web", external_id=s.visitor(i)))
            session.add(Subscription(user_id=user.id, scope="category", value="elderly"))
            s.residents.append(user.id)
        for username, role, extra in (
            ("admin", "admin", {}),
            ("staff-x", "staff", {"community_id": x.id}),
            ("staff-y", "staff", {"community_id": y.id}),
            ("org-a", "org", {"org_id": org_a.id}),
            ("org-b", "org", {"org_id": org_b.id}),
        ):
            _, s.passwords[username] = await create_staff(
                session, username, role, actor=SEEDER, **extra
            )
    return s


@asynccontextmanager
async def activities_env(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, Seed]]:
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=database_url, run_background=False
    )
    app = create_app(settings)
    with use_clock(START) as clock:
        async with app.router.lifespan_context(app):
            yield app, await seed_world(app, clock)
        await app.state.runtime.engine.dispose()


def html_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"accept": "text/html"},
    )


@asynccontextmanager
async def staff_client(app: FastAPI, s: Seed, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with html_client(app) as http:
        response = await login(http, username, s.passwords[username])
        assert response.status_code == 303, response.text
        yield http


def resident_client(app: FastAPI, visitor: str | None) -> httpx.AsyncClient:
    """A phone with the web chat's signed visitor cookie (None: never opened the chat)."""
    http = html_client(app)
    if visitor is not None:
        secret = app.state.runtime.settings.secret_key.get_secret_value()
        signed = URLSafeSerializer(secret, salt="linli-web-visitor").dumps(visitor)
        http.cookies.set(COOKIE, signed, domain="testserver.local")
    return http


async def post_form(
    http: httpx.AsyncClient, action: str, page: str = "/staff/activities", **fields: Any
) -> httpx.Response:
    """Post like a browser: the CSRF token is read from a page of the same session."""
    token = csrf_of((await http.get(page)).text)
    return await http.post(action, data={"csrf": token, **fields})


def draft(s: Seed, **overrides: Any) -> ActivityDraft:
    """Thursday 10:00–12:00 local, community X, elderly, 2 points an hour."""
    values: dict[str, Any] = {
        "title": "敬老院陪伴",
        "place": "东区活动室",
        "community_id": s.community_x,
        "category": "elderly",
        "starts_at": START + timedelta(days=3),
        "ends_at": START + timedelta(days=3, hours=2),
        "description": "陪老人聊天、读报。",
        "capacity": None,
        "points_mode": "hourly",
        "points_rate": 2,
    }
    values.update(overrides)
    return ActivityDraft(**values)


async def make_activity(
    app: FastAPI, s: Seed, *, publish: bool = True, org: str = "a", **overrides: Any
) -> int:
    org_id = s.org_a if org == "a" else s.org_b
    async with transaction(app.state.runtime.factory) as session:
        activity = await create_activity(
            session, org_id=org_id, actor=Actor("org", str(org_id)), draft=draft(s, **overrides)
        )
        if publish:
            await publish_activity(
                session, activity_id=activity.id, org_id=org_id, actor=Actor("org", str(org_id))
            )
        return activity.id


async def sign_up_all(app: FastAPI, activity_id: int, user_ids: list[int]) -> None:
    for user_id in user_ids:
        async with transaction(app.state.runtime.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user_id, notify=False)


async def get_activity(app: FastAPI, activity_id: int) -> Activity:
    async with app.state.runtime.factory() as session:
        activity = await session.get(Activity, activity_id)
        assert activity is not None
        return activity


async def activities_count(app: FastAPI) -> int:
    async with app.state.runtime.factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Activity)) or 0)


async def signup_of(app: FastAPI, activity_id: int, user_id: int) -> ActivitySignup:
    async with app.state.runtime.factory() as session:
        row = await session.scalar(
            select(ActivitySignup).where(
                ActivitySignup.activity_id == activity_id, ActivitySignup.user_id == user_id
            )
        )
        assert row is not None
        return row
