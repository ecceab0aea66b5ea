"""Organization side of the dashboard: inbox, phone privacy, accept/resolve, other orgs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from community.catalog import t
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


async def test_org_inbox_lists_its_request(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        page = (await http.get("/staff")).text
        assert "夕阳红养老服务中心" in page
        assert (await load(app, s.routed)).number in page
        assert (await load(app, s.low)).number not in page
        assert PHONE not in page
        for tab in ("new", "active", "done", "all"):
            assert t(f"dash.tab.{tab}") in page


async def test_phone_hidden_until_accepted(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        before = (await http.get(f"/staff/requests/{s.routed}")).text
        assert PHONE not in before  # neither in the phone field nor in the text
        assert "138****5678" in before  # the text is shown with mask_pii
        assert t("dash.field.phone_hidden") in before
        response = await post_action(http, s.routed, "accept")
        assert response.status_code == 303
        after = (await http.get(response.headers["location"])).text
        assert t("dash.flash.accept") in after
        assert f'<span class="phone">{PHONE}</span>' in after
    request = await load(app, s.routed)
    assert request.status == "accepted" and request.accepted_at is not None
    assert (await event_actions(app, s.routed))[-1] == "accept"


async def test_other_org_gets_404_and_cannot_accept(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-b") as http:
        assert (await http.get(f"/staff/requests/{s.routed}")).status_code == 404
        response = await post_action(http, s.routed, "accept")
        assert response.status_code == 404
        assert t("dash.error.not_found") in response.text
    request = await load(app, s.routed)
    assert request.status == "routed" and request.accepted_at is None


async def test_org_cannot_use_staff_actions(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        response = await post_action(http, s.routed, "close", reason="不想做")
        assert response.status_code == 403
    assert (await load(app, s.routed)).status == "routed"


async def test_resolve_requires_a_note(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        await post_action(http, s.routed, "accept")
        await post_action(http, s.routed, "start")
        response = await post_action(http, s.routed, "resolve", note="  ")
        page = (await http.get(response.headers["location"])).text
        assert t("error.note_required") in page
        assert (await load(app, s.routed)).status == "in_progress"
        response = await post_action(http, s.routed, "resolve", note="已每天送餐上门")
        page = (await http.get(response.headers["location"])).text
        assert t("dash.flash.resolve") in page
        assert "已每天送餐上门" in page
    request = await load(app, s.routed)
    assert request.status == "resolved" and request.result_note == "已每天送餐上门"


async def test_decline_leaves_the_inbox(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        response = await post_action(http, s.routed, "decline", note="人手不够")
        assert response.status_code == 303 and response.headers["location"] == "/staff"
        assert (await http.get(f"/staff/requests/{s.routed}")).status_code == 404
    request = await load(app, s.routed)
    assert request.org_id is None and request.status == "pending_review"
    assert s.org_a in request.declined_by
