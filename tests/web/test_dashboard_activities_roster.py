"""The sign-up list (masked), messages, attendance, no-shows and finishing with points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from community.audit import Actor
from community.catalog import t
from community.timebank import user_balance
from storage.db import transaction
from tests.web.test_dashboard_activities_support import (
    NAMES,
    PHONES,
    START,
    Seed,
    activities_env,
    make_activity,
    post_form,
    sign_up_all,
    signup_of,
    staff_client,
)


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with activities_env(tmp_path, database_url) as pair:
        yield pair


async def _earlier_no_show(app: FastAPI, s: Seed, user_id: int) -> None:
    """An activity yesterday-ish that the resident skipped (finish marks them absent)."""
    from community.activities import finish_activity

    earlier = await make_activity(app, s, title="上周的活动")
    await sign_up_all(app, earlier, [user_id])
    s.clock.advance(days=3, hours=1)
    async with transaction(app.state.runtime.factory) as session:
        await finish_activity(
            session, activity_id=earlier, org_id=s.org_a, actor=Actor("org", str(s.org_a))
        )
    s.clock.set(START)


async def _balance(app: FastAPI, user_id: int) -> int:
    async with app.state.runtime.factory() as session:
        return await user_balance(session, user_id)


async def test_roster_masks_residents_and_shows_earlier_no_shows(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    await _earlier_no_show(app, s, s.residents[0])
    activity_id = await make_activity(
        app, s, starts_at=START + timedelta(days=5), ends_at=START + timedelta(days=5, hours=2)
    )
    await sign_up_all(app, activity_id, s.residents[:3])
    async with staff_client(app, s, "org-a") as http:
        page = (await http.get(f"/staff/activities/{activity_id}")).text
    assert "张*丰" in page and "李*" in page and "王*" in page
    for name in NAMES[:3]:
        assert name not in page
    for phone in PHONES:
        assert phone not in page and f"{phone[:3]}****{phone[-4:]}" not in page
    assert t("dacts.detail.no_shows_some", n=1) in page  # 张三丰 skipped the earlier one
    assert page.count(f">{t('activities.signup_status.confirmed')}</td>") == 3


async def test_message_reaches_confirmed_sign_ups(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    await sign_up_all(app, activity_id, s.residents[:2])
    base = f"/staff/activities/{activity_id}"
    async with staff_client(app, s, "org-a") as http:
        empty = await post_form(http, f"{base}/message", text="  ")
        assert (
            t("activities.error.message_empty") in (await http.get(empty.headers["location"])).text
        )
        sent = await post_form(http, f"{base}/message", text="请带上水杯。")
        page = (await http.get(sent.headers["location"])).text
    assert t("dacts.flash.messaged", count=2) in page


async def test_attendance_no_show_and_finish_credit_points(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id = await make_activity(app, s)  # Thursday 10:00–12:00, 2 points an hour
    came, absent, late = s.residents[:3]
    await sign_up_all(app, activity_id, [came, absent, late])
    base = f"/staff/activities/{activity_id}"
    signup_came = await signup_of(app, activity_id, came)
    signup_absent = await signup_of(app, activity_id, absent)
    async with staff_client(app, s, "org-a") as http:
        early = await post_form(http, f"{base}/signups/{signup_came.id}/attend", hours="2")
        assert t("activities.error.not_started") in (await http.get(early.headers["location"])).text
        s.clock.advance(days=3, hours=2, minutes=30)  # after the end
        bad = await post_form(http, f"{base}/signups/{signup_came.id}/attend", hours="两个钟")
        assert t("dacts.error.hours_number") in (await http.get(bad.headers["location"])).text
        ok = await post_form(http, f"{base}/signups/{signup_came.id}/attend", hours="2")
        page = (await http.get(ok.headers["location"])).text
        assert t("dacts.flash.attended", hours="2", points=0) in page
        gone = await post_form(http, f"{base}/signups/{signup_absent.id}/no_show")
        assert t("dacts.flash.no_show") in (await http.get(gone.headers["location"])).text
        done = await post_form(http, f"{base}/finish")
        page = (await http.get(done.headers["location"])).text
        # 王五 never came and was not marked: finishing counts them absent too.
        assert t("dacts.flash.finished", attended=1, points=4, no_shows=2) in page
        assert t("dacts.detail.points_done") in page
    assert await _balance(app, came) == 4
    assert await _balance(app, absent) == 0
    assert (await signup_of(app, activity_id, late)).attendance == "no_show"


async def test_sign_up_of_another_activity_is_not_reachable_through_this_one(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    mine = await make_activity(app, s)
    other = await make_activity(app, s, org="b", community_id=s.community_y)
    await sign_up_all(app, other, [s.residents[3]])
    foreign = await signup_of(app, other, s.residents[3])
    s.clock.advance(days=3, hours=1)
    async with staff_client(app, s, "staff-x") as http:
        response = await post_form(http, f"/staff/activities/{mine}/signups/{foreign.id}/attend")
        assert response.status_code == 404
    assert (await signup_of(app, other, s.residents[3])).attendance is None
