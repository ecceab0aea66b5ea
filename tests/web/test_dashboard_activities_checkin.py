"""The organizer's check-in display (page, JSON, QR) and the broadcasts page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from community import clock
from community.catalog import t
from community.checkin import STEP_SECONDS, checkin_code
from tests.web.test_dashboard_activities_support import (
    START,
    Seed,
    activities_env,
    get_activity,
    make_activity,
    post_form,
    staff_client,
)


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with activities_env(tmp_path, database_url) as pair:
        yield pair


async def test_json_gives_the_current_code_and_follows_the_clock(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    activity = await get_activity(app, activity_id)
    s.clock.set(START + timedelta(days=3, seconds=7))  # the morning of the activity
    url = f"/staff/activities/{activity_id}/checkin.json"
    async with staff_client(app, s, "org-a") as http:
        first = await http.get(url, headers={"accept": "application/json"})
        assert first.status_code == 200
        assert first.headers["cache-control"] == "no-store"
        body = first.json()
        assert body["code"] == checkin_code(activity, clock.now())
        assert len(body["code"]) == 6 and body["code"].isdigit()
        assert body["seconds_left"] == STEP_SECONDS - 7
        assert body["window"] == "open"
        assert body["url"].endswith(f"/checkin/{activity.number}?c={body['code']}")
        assert body["qr"] == f"/staff/activities/{activity_id}/checkin.svg?c={body['code']}"
        s.clock.advance(seconds=STEP_SECONDS)
        later = (await http.get(url, headers={"accept": "application/json"})).json()
    assert later["code"] == checkin_code(activity, clock.now())
    assert later["code"] != body["code"]


async def test_qr_endpoint_returns_svg_and_the_page_shows_the_code(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    activity = await get_activity(app, activity_id)
    async with staff_client(app, s, "org-a") as http:
        qr = await http.get(f"/staff/activities/{activity_id}/checkin.svg")
        assert qr.status_code == 200
        assert qr.headers["content-type"].startswith("image/svg+xml")
        assert qr.text.lstrip().startswith("<svg") and "</svg>" in qr.text
        page = await http.get(f"/staff/activities/{activity_id}/checkin")
    assert page.status_code == 200
    assert f'id="checkin-code" aria-live="polite">{checkin_code(activity)}<' in page.text
    assert "/static/activities.js" in page.text and "<script>" not in page.text
    assert t("dacts.checkin.not_yet", time="2026-11-26 09:30") in page.text


async def test_display_needs_a_published_activity(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id = await make_activity(app, s, publish=False)
    async with staff_client(app, s, "org-a") as http:
        page = await http.get(f"/staff/activities/{activity_id}/checkin")
        assert page.status_code == 303
        assert t("dacts.checkin.not_published") in (await http.get(page.headers["location"])).text
        data = await http.get(f"/staff/activities/{activity_id}/checkin.json")
        assert data.status_code == 409
        assert (await http.get(f"/staff/activities/{activity_id}/checkin.svg")).status_code == 409


async def test_json_needs_a_login(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    from tests.web.test_dashboard_activities_support import html_client

    async with html_client(app) as http:
        response = await http.get(
            f"/staff/activities/{activity_id}/checkin.json", headers={"accept": "application/json"}
        )
    assert response.status_code == 401
    assert "code" not in response.text


async def test_broadcasts_page_for_staff_with_bars_and_stop(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    await make_activity(app, s)  # community X: staff-x sees it, staff-y does not
    async with staff_client(app, s, "staff-y") as http:
        page = (await http.get("/staff/broadcasts")).text
        assert t("dacts.broadcasts.empty") in page
        response = await post_form(http, "/staff/broadcasts/1/cancel", page="/staff/broadcasts")
        assert response.status_code == 404
    async with staff_client(app, s, "org-a") as http:
        assert (await http.get("/staff/broadcasts")).status_code == 403
    async with staff_client(app, s, "staff-x") as http:
        page = (await http.get("/staff/broadcasts")).text
        assert t("dacts.broadcasts.status.planning") in page
        assert '<svg class="progress__bar"' in page
        stop = await post_form(http, "/staff/broadcasts/1/cancel", page="/staff/broadcasts")
        assert stop.status_code == 303
        page = (await http.get("/staff/broadcasts")).text
        assert t("dacts.flash.broadcast_cancelled") in page
        assert t("dacts.broadcasts.status.cancelled") in page
