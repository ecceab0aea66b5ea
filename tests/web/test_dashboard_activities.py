"""Organizers in the dashboard: create (form, Chinese times), validate, publish, authorize."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from community import clock
from community.catalog import t
from storage.models import Broadcast
from tests.web.test_dashboard_activities_support import (
    Seed,
    activities_count,
    activities_env,
    get_activity,
    make_activity,
    post_form,
    staff_client,
)

FORM = {
    "title": "敬老院陪伴",
    "place": "东区活动室",
    "category": "elderly",
    "capacity": "10",
    "points_mode": "hourly",
    "points_rate": "2",
}


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with activities_env(tmp_path, database_url) as pair:
        yield pair


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=clock.LOCAL_TZ)  # type: ignore[misc]


async def test_form_accepts_chinese_time_text(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with staff_client(app, s, "org-a") as http:
        page = await http.get("/staff/activities/new")
        assert page.status_code == 200 and 'type="datetime-local"' in page.text
        response = await post_form(
            http,
            "/staff/activities/new",
            **FORM,
            community_id=str(s.community_x),
            starts_text="下周六上午9点到11点",
            deadline_text="下周五晚上8点",
        )
        assert response.status_code == 303
        detail = await http.get(response.headers["location"])
        assert t("dacts.flash.created") in detail.text
    activity_id = int(response.headers["location"].rsplit("/", 1)[1])
    activity = await get_activity(app, activity_id)
    # Monday 2026-11-23: 下周六 is Saturday 2026-12-05.
    assert activity.starts_at == local(2026, 12, 5, 9, 0)
    assert activity.ends_at == local(2026, 12, 5, 11, 0)
    assert activity.signup_deadline == local(2026, 12, 4, 20, 0)
    assert (activity.status, activity.org_id, activity.capacity) == ("draft", s.org_a, 10)


async def test_form_accepts_pickers_and_end_as_clock_text(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with staff_client(app, s, "org-a") as http:
        response = await post_form(
            http,
            "/staff/activities/new",
            **FORM,
            community_id=str(s.community_x),
            starts_at="2026-11-28T09:00",
            ends_text="11点半",
        )
        assert response.status_code == 303, response.text
    activity = await get_activity(app, int(response.headers["location"].rsplit("/", 1)[1]))
    assert activity.starts_at == local(2026, 11, 28, 9, 0)
    assert activity.ends_at == local(2026, 11, 28, 11, 30)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"starts_at": "2026-11-20T09:00", "ends_at": "2026-11-20T11:00"}, "starts_in_past"),
        ({"starts_text": "下周六上午9点到11点", "capacity": "0"}, "bad_capacity"),
        ({"starts_text": "下周六上午9点到11点", "points_rate": "很多"}, "bad_points"),
        ({"starts_text": "下周六上午9点到11点", "points_rate": "5000"}, "bad_points"),
        ({"starts_text": "哪天都行"}, "time_unreadable"),
        ({"starts_text": "下周六"}, "time_needs_clock"),
        ({"starts_at": "2026-11-28T09:00"}, "ends_required"),
    ],
)
async def test_form_refuses_politely_and_keeps_input(
    env: tuple[FastAPI, Seed], fields: dict[str, str], expected: str
) -> None:
    app, s = env
    data = {**FORM, "community_id": str(s.community_x), **fields}
    async with staff_client(app, s, "org-a") as http:
        response = await post_form(http, "/staff/activities/new", **data)
    assert response.status_code == 400
    key = f"activities.error.{expected}"
    text = {
        "time_unreadable": t("dacts.error.time_unreadable", text="哪天都行"),
        "time_needs_clock": t("dacts.error.time_needs_clock", text="下周六"),
        "ends_required": t("dacts.error.ends_required"),
    }.get(expected) or t(key)
    assert text in response.text
    for value in data.values():  # nothing typed is lost
        assert f'value="{value}"' in response.text or f'value="{value}" selected' in response.text
    assert await activities_count(app) == 0


async def test_form_without_csrf_token_changes_nothing(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with staff_client(app, s, "org-a") as http:
        response = await http.post(
            "/staff/activities/new",
            data={**FORM, "community_id": str(s.community_x), "starts_text": "下周六上午9点到11点"},
        )
    assert response.status_code == 403
    assert await activities_count(app) == 0


async def test_org_cannot_create_in_a_community_it_does_not_serve(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    async with staff_client(app, s, "org-a") as http:
        page = await http.get("/staff/activities/new")
        assert "西区社区" not in page.text  # not offered
        response = await post_form(
            http,
            "/staff/activities/new",
            **FORM,
            community_id=str(s.community_y),
            starts_text="下周六上午9点到11点",
        )
    assert response.status_code == 400
    assert t("dacts.error.choose_community") in response.text
    assert await activities_count(app) == 0


async def test_staff_creates_for_an_organization_of_their_community(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    async with staff_client(app, s, "staff-x") as http:
        missing_org = await post_form(
            http,
            "/staff/activities/new",
            **FORM,
            community_id=str(s.community_x),
            starts_text="下周六上午9点到11点",
        )
        assert missing_org.status_code == 400
        assert t("dacts.error.choose_org") in missing_org.text
        response = await post_form(
            http,
            "/staff/activities/new",
            **FORM,
            community_id=str(s.community_x),
            org_id=str(s.org_b),
            starts_text="下周六上午9点到11点",
        )
        assert response.status_code == 303
    activity = await get_activity(app, int(response.headers["location"].rsplit("/", 1)[1]))
    assert (activity.org_id, activity.community_id) == (s.org_b, s.community_x)


async def test_publish_starts_a_broadcast_and_shows_its_progress(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    activity_id = await make_activity(app, s, publish=False)
    async with staff_client(app, s, "org-a") as http:
        response = await post_form(http, f"/staff/activities/{activity_id}/publish")
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/activities/{activity_id}"
        async with app.state.runtime.factory() as session:
            broadcasts = list(
                await session.scalars(select(Broadcast).where(Broadcast.activity_id == activity_id))
            )
        assert [b.kind for b in broadcasts] == ["activity_published"]
        await app.state.runtime.fanout.run_once()
        page = (await http.get(f"/staff/activities/{activity_id}")).text
        assert t("dacts.flash.published") in page
        # The three residents of 东区 subscribed to 养老 chat on the web: sent at once.
        counts = {"sent": 3, "pending": 0, "failed": 0, "gone": 0, "cancelled": 0}
        assert t("dacts.broadcasts.numbers", total=3, **counts) in page
        assert 'class="seg seg--sent"' in page
        again = await post_form(http, f"/staff/activities/{activity_id}/publish")
        follow = await http.get(again.headers["location"])
        assert t("activities.error.not_draft") in follow.text
    assert (await get_activity(app, activity_id)).status == "published"


async def test_other_organizations_and_communities_get_404(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id = await make_activity(app, s, publish=False)
    base = f"/staff/activities/{activity_id}"
    for username in ("org-b", "staff-y"):
        async with staff_client(app, s, username) as http:
            for path in (base, f"{base}/edit", f"{base}/checkin", f"{base}/checkin.svg"):
                assert (await http.get(path)).status_code == 404, (username, path)
            assert (await http.get(f"{base}/checkin.json")).status_code == 404
            for verb in ("publish", "cancel", "finish", "edit"):
                response = await post_form(http, f"{base}/{verb}", title="改掉", reason="x")
                assert response.status_code == 404, (username, verb)
            listing = (await http.get("/staff/activities")).text
            assert "敬老院陪伴" not in listing
    activity = await get_activity(app, activity_id)
    assert (activity.status, activity.title) == ("draft", "敬老院陪伴")
    for username in ("org-a", "staff-x", "admin"):
        async with staff_client(app, s, username) as http:
            assert (await http.get(base)).status_code == 200
            assert "敬老院陪伴" in (await http.get("/staff/activities")).text


async def test_edit_keeps_what_was_not_touched_and_refuses_bad_values(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    base = f"/staff/activities/{activity_id}"
    async with staff_client(app, s, "org-a") as http:
        page = (await http.get(f"{base}/edit")).text
        assert 'value="敬老院陪伴"' in page and "disabled" in page  # community/category locked
        before = await get_activity(app, activity_id)
        fields = {
            "title": "敬老院陪伴（下午场）",
            "place": before.place,
            "community_id": str(s.community_x),
            "category": "elderly",
            "starts_at": clock.local(before.starts_at).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": clock.local(before.ends_at).strftime("%Y-%m-%dT%H:%M"),
            "points_mode": "hourly",
            "points_rate": "2",
            "description": before.description,
        }
        bad = await post_form(http, f"{base}/edit", page=f"{base}/edit", **fields, capacity="0")
        assert bad.status_code == 400 and t("activities.error.bad_capacity") in bad.text
        assert 'value="敬老院陪伴（下午场）"' in bad.text
        response = await post_form(http, f"{base}/edit", page=f"{base}/edit", **fields)
        assert response.status_code == 303
    after = await get_activity(app, activity_id)
    assert after.title == "敬老院陪伴（下午场）"
    assert (after.starts_at, after.ends_at, after.capacity) == (
        before.starts_at,
        before.ends_at,
        None,
    )


async def test_cancel_of_a_published_activity_needs_a_reason(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    base = f"/staff/activities/{activity_id}"
    async with staff_client(app, s, "org-a") as http:
        refused = await post_form(http, f"{base}/cancel", reason="")
        assert t("dacts.error.cancel_reason") in (await http.get(refused.headers["location"])).text
        assert (await get_activity(app, activity_id)).status == "published"
        done = await post_form(http, f"{base}/cancel", reason="天气预报有暴雨")
        assert t("dacts.flash.cancelled") in (await http.get(done.headers["location"])).text
    activity = await get_activity(app, activity_id)
    assert (activity.status, activity.cancel_reason) == ("cancelled", "天气预报有暴雨")
