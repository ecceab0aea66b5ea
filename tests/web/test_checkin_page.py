"""The resident's check-in page opened from the QR code: /checkin/<number>?c=<code>."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from community.catalog import t
from community.checkin import checkin_code
from tests.web.test_dashboard_activities_support import (
    START,
    Seed,
    activities_env,
    get_activity,
    make_activity,
    resident_client,
    sign_up_all,
    signup_of,
)

TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with activities_env(tmp_path, database_url) as pair:
        yield pair


async def _at_the_door(app: FastAPI, s: Seed) -> tuple[int, str]:
    """A published activity with 张三丰 signed up; the clock at its start. (id, number)"""
    activity_id = await make_activity(app, s)
    await sign_up_all(app, activity_id, [s.residents[0]])
    s.clock.set(START + timedelta(days=3, minutes=2))
    return activity_id, (await get_activity(app, activity_id)).number


async def _press(http: httpx.AsyncClient, page: httpx.Response, number: str) -> httpx.Response:
    match = TOKEN_RE.search(page.text)
    assert match, "no button on the page"
    code = re.search(r'name="c" value="([^"]*)"', page.text)
    action = re.search(r'name="action" value="([^"]*)"', page.text)
    assert code and action
    return await http.post(
        f"/checkin/{number}",
        data={"token": match.group(1), "c": code.group(1), "action": action.group(1)},
    )


async def test_valid_code_checks_in_by_qr_after_one_press(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id, number = await _at_the_door(app, s)
    code = checkin_code(await get_activity(app, activity_id))
    async with resident_client(app, s.visitor(0)) as http:
        page = await http.get(f"/checkin/{number}?c={code}")
        assert page.status_code == 200
        assert t("dacts.resident.confirm_in") in page.text and "敬老院陪伴" in page.text
        assert (await signup_of(app, activity_id, s.residents[0])).checked_in_at is None
        pressed = await _press(http, page, number)
        assert pressed.status_code == 303
        after = await http.get(pressed.headers["location"])
    signup = await signup_of(app, activity_id, s.residents[0])
    assert signup.checked_in_at is not None and signup.checkin_method == "qr"
    assert t("dacts.resident.checked_in") in after.text
    assert t("dacts.resident.checked_in_at", time="10:02") in after.text


async def test_check_out_with_a_later_code_records_hours(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id, number = await _at_the_door(app, s)
    activity = await get_activity(app, activity_id)
    async with resident_client(app, s.visitor(0)) as http:
        page = await http.get(f"/checkin/{number}?c={checkin_code(activity)}")
        await _press(http, page, number)
        s.clock.advance(hours=2)
        page = await http.get(f"/checkin/{number}?c={checkin_code(activity)}")
        assert t("dacts.resident.confirm_out") in page.text
        pressed = await _press(http, page, number)
        after = await http.get(pressed.headers["location"])
    assert t("dacts.resident.done") in after.text
    signup = await signup_of(app, activity_id, s.residents[0])
    assert signup.checked_out_at is not None and signup.attendance == "attended"


async def test_invalid_code_is_refused_and_nothing_is_recorded(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    activity_id, number = await _at_the_door(app, s)
    good = checkin_code(await get_activity(app, activity_id))
    wrong = "000000" if good != "000000" else "111111"
    async with resident_client(app, s.visitor(0)) as http:
        page = await http.get(f"/checkin/{number}?c={wrong}")
        assert t("activities.error.bad_code") in page.text
        assert TOKEN_RE.search(page.text) is None  # no button for a wrong code
        valid_page = await http.get(f"/checkin/{number}?c={good}")
        token = TOKEN_RE.search(valid_page.text)
        assert token
        forged = await http.post(
            f"/checkin/{number}", data={"token": token.group(1), "c": wrong, "action": "in"}
        )
        assert forged.status_code == 400
        assert t("activities.error.bad_code") in forged.text
        no_token = await http.post(f"/checkin/{number}", data={"c": good, "action": "in"})
        assert no_token.status_code == 403
    assert (await signup_of(app, activity_id, s.residents[0])).checked_in_at is None


async def test_a_phone_without_the_chat_is_asked_to_type_the_code(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    activity_id, number = await _at_the_door(app, s)
    code = checkin_code(await get_activity(app, activity_id))
    async with resident_client(app, None) as http:
        page = await http.get(f"/checkin/{number}?c={code}")
        assert page.status_code == 200
        assert t("dacts.resident.need_chat_code", code=code) in page.text
        assert 'href="/"' in page.text and TOKEN_RE.search(page.text) is None
        pressed = await http.post(f"/checkin/{number}", data={"c": code, "action": "in"})
        assert pressed.status_code == 403
    assert (await signup_of(app, activity_id, s.residents[0])).checked_in_at is None


async def test_someone_not_signed_up_and_unknown_activities(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    draft_id = await make_activity(app, s, publish=False, title="草稿活动")
    draft_number = (await get_activity(app, draft_id)).number
    activity_id, number = await _at_the_door(app, s)
    code = checkin_code(await get_activity(app, activity_id))
    async with resident_client(app, s.visitor(1)) as http:  # 李四 did not sign up
        page = await http.get(f"/checkin/{number}?c={code}")
        assert t("activities.error.not_signed_up") in page.text
        assert TOKEN_RE.search(page.text) is None
        assert (await http.get("/checkin/HD0000-9999?c=123456")).status_code == 404
        assert (await http.get(f"/checkin/{draft_number}?c=123456")).status_code == 404
