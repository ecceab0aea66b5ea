"""Shared set-up of the dashboard tests: a running app on a temp SQLite file, seeded data.

Seed: one street, communities 东区 (X) and 西区 (Y), organizations A (养老, all
communities) and B (医疗, all communities), and requests: one routed to A (with a phone),
one low-confidence (review), one emergency in Y with no organization (review). Accounts:
admin, a staff member of X, a member of A and one of B.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from community.audit import Actor
from community.orgs import OrgSpec, upsert_organization
from community.requests import Intake, submit_request
from community.staff import create_staff
from linli.settings import Settings
from storage.db import transaction
from storage.models import Community, Request, RequestEvent, Street
from web.app import create_app

SEEDER = Actor("system", "test-seed")
PHONE = "13812345678"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Seed:
    community_x: int = 0
    community_y: int = 0
    org_a: int = 0
    org_b: int = 0
    routed: int = 0  # to A, community X, with phone
    low: int = 0  # low confidence, community X
    emergency: int = 0  # emergency, community Y, no organization
    passwords: dict[str, str] = field(default_factory=dict)


def _intake(text: str, category: str, confidence: float, **kw: object) -> Intake:
    return Intake(
        text=text,
        kind="need",
        category=category,
        predicted_category=category,
        confidence=confidence,
        **kw,  # type: ignore[arg-type]
    )


async def seed(app: FastAPI) -> Seed:
    s = Seed()
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
            session, OrgSpec("夕阳红养老服务中心", "社会组织", ["elderly"], None, ""), SEEDER
        )
        org_b = await upsert_organization(
            session, OrgSpec("康宁健康服务社", "社会组织", ["health"], None, ""), SEEDER
        )
        s.org_a, s.org_b = org_a.id, org_b.id
        common = {"user_id": None, "review_threshold": 0.35, "actor": SEEDER}
        routed = await submit_request(
            session,
            community_id=x.id,
            intake=_intake(
                f"我家老人需要每天送餐，电话{PHONE}", "elderly", 0.9, contact_phone=PHONE
            ),
            **common,
        )
        low = await submit_request(
            session,
            community_id=x.id,
            intake=_intake("楼下那个事情想问问怎么弄", "health", 0.1),
            **common,
        )
        emergency = await submit_request(
            session,
            community_id=y.id,
            intake=_intake("楼道里着火了有烟", "safety", 0.9, emergency=True),
            **common,
        )
        s.routed, s.low, s.emergency = routed.id, low.id, emergency.id
        for name, role, extra in (
            ("admin", "admin", {}),
            ("staff-x", "staff", {"community_id": x.id}),
            ("org-a", "org", {"org_id": org_a.id}),
            ("org-b", "org", {"org_id": org_b.id}),
        ):
            _, s.passwords[name] = await create_staff(session, name, role, actor=SEEDER, **extra)
    return s


@asynccontextmanager
async def dashboard_env(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Seed]]:
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
        run_background=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, await seed(app)


def browser(app: FastAPI) -> httpx.AsyncClient:
    """A client that asks for HTML like a browser (so auth redirects instead of 401)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"accept": "text/html"},
    )


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no csrf field"
    return match.group(1)


async def login(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await http.get("/staff/login")
    return await http.post(
        "/staff/login",
        data={"csrf": csrf_of(page.text), "username": username, "password": password},
    )


@asynccontextmanager
async def logged_in(app: FastAPI, s: Seed, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as http:
        response = await login(http, username, s.passwords[username])
        assert response.status_code == 303 and response.headers["location"] == "/staff"
        yield http


async def post_action(
    http: httpx.AsyncClient, request_id: int, action: str, **fields: str
) -> httpx.Response:
    """Post an action form the way the detail page does (token taken from the page)."""
    page = await http.get("/staff")
    return await http.post(
        f"/staff/requests/{request_id}/{action}", data={"csrf": csrf_of(page.text), **fields}
    )


async def load(app: FastAPI, request_id: int) -> Request:
    async with transaction(app.state.runtime.factory) as session:
        request = await session.get(Request, request_id)
        assert request is not None
        return request


async def event_actions(app: FastAPI, request_id: int) -> list[str]:
    async with transaction(app.state.runtime.factory) as session:
        rows = await session.scalars(
            select(RequestEvent.action)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
        return list(rows)
