"""Staff keep the classifier in step with how residents talk: keywords and corrections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from community.catalog import t
from community.keywords import current_classifier
from storage.db import transaction
from storage.models import AuditLog
from tests.web.test_dashboard_support import (
    Seed,
    csrf_of,
    dashboard_env,
    event_actions,
    load,
    logged_in,
    post_action,
)

NEW_WORD = "蓝马甲巡逻"  # a made-up local term no lexicon knows


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with dashboard_env(tmp_path) as pair:
        yield pair


async def _post_keyword(http, **fields: str):  # type: ignore[no-untyped-def]
    page = await http.get("/staff/keywords")
    return await http.post("/staff/keywords", data={"csrf": csrf_of(page.text), **fields})


async def test_added_keyword_routes_at_once_and_is_audited(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    assert NEW_WORD not in current_classifier().classify(f"{NEW_WORD}今晚没来").matched
    async with logged_in(app, s, "admin") as http:
        response = await _post_keyword(http, category="safety", term=NEW_WORD, action="add")
        assert response.status_code == 303
        page = (await http.get("/staff/keywords")).text
        assert t("dash.flash.keyword_saved") in page and NEW_WORD in page
        result = current_classifier().classify(f"{NEW_WORD}今晚没来")
        assert result.category == "safety" and NEW_WORD in result.matched

        bad = await _post_keyword(http, category="nonsense", term="x", action="add")
        assert "没有这个类别" in (await http.get(bad.headers["location"])).text

        await _post_keyword(http, category="safety", term=NEW_WORD, action="reset")
        assert NEW_WORD not in current_classifier().classify(f"{NEW_WORD}今晚没来").matched
    async with transaction(app.state.runtime.factory) as session:
        actions = list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert "keyword_add" in actions and "keyword_reset" in actions


async def test_removed_shipped_keyword_stops_counting(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    before = current_classifier().classify("路灯")
    assert "路灯" in before.matched
    async with logged_in(app, s, "admin") as http:
        await _post_keyword(http, category=before.category, term="路灯", action="remove")
    assert "路灯" not in current_classifier().classify("路灯").matched


async def test_org_users_cannot_change_keywords(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "org-a") as http:
        assert (await http.get("/staff/keywords")).status_code == 403
        response = await _post_keyword(http, category="safety", term=NEW_WORD, action="add")
        assert response.status_code == 403
    assert NEW_WORD not in current_classifier().classify(NEW_WORD).matched


async def test_recategorize_is_recorded(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with logged_in(app, s, "admin") as http:
        response = await post_action(http, s.low, "recategorize", category="legal")
        assert response.status_code == 303
    request = await load(app, s.low)
    assert request.category == "legal"
    assert (await event_actions(app, s.low))[-1] == "recategorize"
    from community.requests import corrected_requests

    async with transaction(app.state.runtime.factory) as session:
        rows = await corrected_requests(session)
    assert [r["category"] for r in rows] == ["legal"]
    async with logged_in(app, s, "org-a") as http:
        response = await post_action(http, s.low, "recategorize", category="health")
        assert response.status_code in {403, 404}
    assert (await load(app, s.low)).category == "legal"
