"""Staff side of the dashboard: review queue, assign, close, emergencies, community scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from community.catalog import t
from storage.db import transaction
from storage.models import Request, utcnow
from tests.web.test_dashboard_support import (
    PHONE,
    Seed,
    dashboard_env,
    event_actions,
    load,
    logged_in,
    post_action,
)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with dashboard_env(tmp_path) as pair:
        yield pair


async def _number(app: FastAPI, request_id: int) -> str:
    return (await load(app, request_id)).number


async def test_review_queue_lists_low_confidence_and_emergency(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        page = (await http.get("/staff")).text
        low, emergency = await _number(app, s.low), await _number(app, s.emergency)
        assert low in page and emergency in page
        assert await _number(app, s.routed) not in page  # routed recently: not in the queue
        assert page.index(emergency) < page.index(low)  # emergencies first
        assert "row--emergency" in page
        for tab in ("all", "low_confidence", "no_org", "emergency", "unaccepted"):
            assert t(f"dash.tab.{tab}") in page
        only_low = (await http.get("/staff?tab=low_confidence")).text
        assert low in only_low and emergency not in only_low
        only_emergency = (await http.get("/staff?tab=emergency")).text
        assert emergency in only_emergency and low not in only_emergency


async def test_staff_sees_full_text_and_masked_phone(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        page = (await http.get(f"/staff/requests/{s.routed}")).text
        assert "138****5678" in page
        assert t("dash.heading.trail") in page and t("dash.event.route") in page


async def test_assign_to_an_org_writes_an_event(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        detail = (await http.get(f"/staff/requests/{s.low}")).text
        assert "康宁健康服务社" in detail  # serves the category: offered in the form
        response = await post_action(http, s.low, "assign", org_id=str(s.org_b))
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/requests/{s.low}"
        page = (await http.get(response.headers["location"])).text
        assert t("dash.flash.assign") in page
    request = await load(app, s.low)
    assert request.status == "routed" and request.org_id == s.org_b and not request.needs_review
    assert (await event_actions(app, s.low))[-1] == "assign"


async def test_assign_without_org_is_a_flash_error(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        response = await post_action(http, s.low, "assign", org_id="")
        page = (await http.get(response.headers["location"])).text
        assert t("dash.error.choose_org") in page
    assert (await load(app, s.low)).status == "pending_review"


async def test_close_needs_a_reason(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        response = await post_action(http, s.low, "close", reason="   ")
        assert response.status_code == 303
        page = (await http.get(response.headers["location"])).text
        assert t("error.reason_required") in page
        assert (await load(app, s.low)).status == "pending_review"
        response = await post_action(http, s.low, "close", reason="重复提交")
        page = (await http.get(response.headers["location"])).text
        assert t("dash.flash.close") in page
    request = await load(app, s.low)
    assert request.status == "closed" and request.close_reason == "重复提交"


async def test_acknowledge_emergency_leaves_the_emergency_tab(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        number = await _number(app, s.emergency)
        response = await post_action(http, s.emergency, "ack")
        assert response.status_code == 303
        assert number not in (await http.get("/staff?tab=emergency")).text
        assert number in (await http.get("/staff?tab=no_org")).text  # still needs an org
    assert (await event_actions(app, s.emergency))[-1] == "ack_emergency"


async def test_community_staff_cannot_see_other_community(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "staff-x") as http:
        queue = (await http.get("/staff")).text
        assert await _number(app, s.low) in queue
        assert await _number(app, s.emergency) not in queue  # community Y
        assert (await http.get(f"/staff/requests/{s.emergency}")).status_code == 404
        response = await post_action(http, s.emergency, "close", reason="不是我们社区")
        assert response.status_code == 404
    assert (await load(app, s.emergency)).status == "pending_review"


async def test_staff_cannot_use_org_actions(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        response = await post_action(http, s.routed, "accept")
        assert response.status_code == 403
    request = await load(app, s.routed)
    assert request.status == "routed" and request.contact_phone == PHONE


async def test_unaccepted_tab_shows_requests_routed_over_a_day_ago(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    number = await _number(app, s.routed)
    async with logged_in(app, s, "admin") as http:
        assert number not in (await http.get("/staff?tab=unaccepted")).text
        async with transaction(app.state.runtime.factory) as session:
            request = await session.get(Request, s.routed)
            assert request is not None
            request.routed_at = utcnow() - timedelta(hours=25)
        assert number in (await http.get("/staff?tab=unaccepted")).text
        assert number in (await http.get("/staff")).text
