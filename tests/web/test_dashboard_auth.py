"""Dashboard login, logout, session handling, CSRF and the login throttle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from community.catalog import t
from tests.web.test_dashboard_support import (
    Seed,
    browser,
    csrf_of,
    dashboard_env,
    load,
    logged_in,
    login,
)
from web.dashboard import routes


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with dashboard_env(tmp_path) as pair:
        yield pair


@pytest.fixture(autouse=True)
def _no_failure_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "FAILURE_DELAY_S", 0.0)


async def test_login_success_lands_on_dashboard(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with browser(app) as http:
        response = await login(http, "admin", s.passwords["admin"])
        assert response.status_code == 303 and response.headers["location"] == "/staff"
        page = await http.get("/staff")
        assert page.status_code == 200
        assert t("dash.heading.review") in page.text
        assert page.headers["cache-control"] == "no-store"


async def test_login_rotates_csrf_token(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with browser(app) as http:
        before = csrf_of((await http.get("/staff/login")).text)
        await login(http, "admin", s.passwords["admin"])
        after = csrf_of((await http.get("/staff")).text)
        assert before != after


@pytest.mark.parametrize(
    ("username", "password"), [("admin", "wrong-password"), ("nobody", "x" * 12)]
)
async def test_login_failure_is_polite_and_vague(
    env: tuple[FastAPI, Seed], username: str, password: str
) -> None:
    app, _ = env
    async with browser(app) as http:
        response = await login(http, username, password)
        assert response.status_code == 401
        assert t("dash.login.failed") in response.text
        follow = await http.get("/staff")
        assert follow.status_code == 303 and follow.headers["location"] == "/staff/login"


async def test_not_logged_in_api_gets_401_json(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with browser(app) as http:
        response = await http.get(
            f"/staff/requests/{s.routed}", headers={"accept": "application/json"}
        )
        assert response.status_code == 401
        assert response.json()["detail"]


async def test_lockout_after_ten_failures(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with browser(app) as http:
        for _ in range(10):
            assert (await login(http, "admin", "wrong-password")).status_code == 401
        locked = await login(http, "admin", s.passwords["admin"])
        assert locked.status_code == 429
        assert t("dash.login.locked") in locked.text


async def test_login_without_csrf_is_rejected(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with browser(app) as http:
        await http.get("/staff/login")
        response = await http.post(
            "/staff/login", data={"username": "admin", "password": s.passwords["admin"]}
        )
        assert response.status_code == 403
        assert t("dash.error.csrf_title") in response.text


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_action_with_bad_csrf_is_403_and_changes_nothing(
    env: tuple[FastAPI, Seed], token: str | None
) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        data = {} if token is None else {"csrf": token}
        response = await http.post(f"/staff/requests/{s.routed}/accept", data=data)
        assert response.status_code == 403
        assert t("dash.error.csrf") in response.text
    request = await load(app, s.routed)
    assert request.status == "routed" and request.accepted_at is None


async def test_cross_site_origin_is_rejected(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        token = csrf_of((await http.get("/staff")).text)
        response = await http.post(
            f"/staff/requests/{s.routed}/accept",
            data={"csrf": token},
            headers={"origin": "https://evil.example"},
        )
        assert response.status_code == 403
    assert (await load(app, s.routed)).status == "routed"


async def test_logout_ends_the_session(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        token = csrf_of((await http.get("/staff")).text)
        response = await http.post("/staff/logout", data={"csrf": token})
        assert response.status_code == 303 and response.headers["location"] == "/staff/login"
        assert (await http.get("/staff")).status_code == 303
