"""Test harness: a real app (lifespan, migrations, nlp) on a given database, seeded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from community.demo import load_demo
from linli.settings import Settings
from storage.db import transaction
from storage.models import Community, Organization, Request
from web.app import create_app

TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        "run_background": False,
        "throttle_per_minute": 10_000,
        "generic_channels": {"bridge": {"secret": TEST_SECRET, "push_url": None}},
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_app(settings: Settings, *, demo: bool = True) -> AsyncIterator[Any]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if demo:
            async with transaction(app.state.runtime.factory) as session:
                app.state.demo_logins = (await load_demo(session)).logins
        yield app


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def set_org_notify(app: Any, org_name: str, notify: str) -> int:
    async with transaction(app.state.runtime.factory) as session:
        org = await session.scalar(select(Organization).where(Organization.name == org_name))
        assert org is not None
        org.notify = notify
        return org.id


async def set_duty_notify(app: Any, community: str, notify: str) -> None:
    async with transaction(app.state.runtime.factory) as session:
        row = await session.scalar(select(Community).where(Community.name == community))
        assert row is not None
        row.duty_notify = notify


async def all_requests(app: Any) -> list[Request]:
    async with transaction(app.state.runtime.factory) as session:
        return list(await session.scalars(select(Request).order_by(Request.id)))


def payloads(reply: dict[str, Any]) -> dict[str, str]:
    """Button label → payload of one reply (labels as the engine made them)."""
    return {b["text"]: b["payload"] for b in reply.get("buttons", [])}


def find_button(replies: list[dict[str, Any]], label: str) -> str:
    for reply in reversed(replies):
        for button in reply.get("buttons", []):
            if button["text"] == label:
                return button["payload"]
    raise AssertionError(f"no button {label!r} in {replies!r}")
