"""The generic signed channel end to end: a resident's need and a 微心愿 go from first
contact to a rated result, with the organization acting through the same channel."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from storage.db import transaction
from storage.models import InboxEvent, OutboxMessage, Request, RequestEvent
from tests.e2e.harness import (
    TEST_SECRET,
    all_requests,
    client,
    find_button,
    make_settings,
    running_app,
    set_org_notify,
)
from tests.support.bridge import PATH, Bridge, onboard
from webhooks.generic.crypto import make_headers


async def outbox_for(app: Any, target: str) -> list[OutboxMessage]:
    async with transaction(app.state.runtime.factory) as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.target == target)
                .order_by(OutboxMessage.id)
            )
        )


@pytest.mark.parametrize("kind", ["need", "wish"])
async def test_full_conversation(database_url: str, tmp_path, kind: str) -> None:
    settings = make_settings(database_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        bridge = Bridge(http)
        if kind == "need":
            org_name, text = (
                "梅园物业服务中心",
                "楼道里的灯坏了好几天了，晚上黑漆漆的 我电话13812345678",
            )
        else:
            org_name, text = "彩虹桥青少年社工站", "想给楼下留守的小朋友要一个新书包，他的书包破了"
        await set_org_notify(app, org_name, "generic:bridge:org-1")
        await onboard(bridge, "res-1")

        replies = await bridge.say("res-1", text=text)
        proposal = replies[-1]["text"]
        assert org_name in proposal and "对吗" in proposal
        replies = await bridge.say("res-1", button=find_button(replies, "确认"))
        if kind == "wish":  # a child's details: separate consent for sensitive information
            assert "敏感" in replies[0]["text"] and not await all_requests(app)
            replies = await bridge.say("res-1", button=find_button(replies, "同意并提交"))
        assert "已受理" in replies[0]["text"]

        [request] = await all_requests(app)
        assert request.status == "routed" and request.number.startswith("R")
        # The organization's notice is queued with 接单/退回, the phone hidden before accepting.
        [notice] = await outbox_for(app, "org-1")
        assert request.number in notice.text and "13812345678" not in notice.text
        assert {b["payload"] for b in notice.buttons} == {f"oa.{request.id}", f"od.{request.id}"}

        org_replies = await bridge.say("org-1", button=f"oa.{request.id}")
        if kind == "need":
            assert "13812345678" in org_replies[0]["text"]  # visible once accepted
        org_replies = await bridge.say("org-1", button=find_button(org_replies, "处理中"))
        org_replies = await bridge.say("org-1", button=f"or.{request.id}")
        assert "办理结果" in org_replies[0]["text"]
        org_replies = await bridge.say("org-1", text="已上门处理好了")
        assert request.number in org_replies[0]["text"]

        [request] = await all_requests(app)
        assert request.status == "resolved" and request.result_note == "已上门处理好了"
        # The resident was told at each step, in their own channel, and asked for stars.
        notices = [m.text for m in await outbox_for(app, "res-1")]
        assert any("接单" in n for n in notices) and any("已办结" in n for n in notices)
        resolved = (await outbox_for(app, "res-1"))[-1]
        five = next(b["payload"] for b in resolved.buttons if b["text"] == "★★★★★ 非常满意")

        replies = await bridge.say("res-1", button=five)
        assert "谢谢" in replies[0]["text"]
        replies = await bridge.say("res-1", text="师傅很细心")
        [request] = await all_requests(app)
        assert request.rating == 5 and request.rating_comment == "师傅很细心"

        replies = await bridge.say("res-1", button="m.mine")
        assert request.number in replies[0]["text"]

        async with transaction(app.state.runtime.factory) as session:
            actions = list(
                await session.scalars(
                    select(RequestEvent.action)
                    .where(RequestEvent.request_id == request.id)
                    .order_by(RequestEvent.id)
                )
            )
        assert actions == ["submit", "route", "accept", "start", "resolve", "rate", "rate_comment"]


async def test_duplicate_delivery_creates_one_request(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        bridge = Bridge(http)
        await onboard(bridge, "res-2")
        replies = await bridge.say("res-2", text="小区路灯坏了 晚上太黑")
        confirm = find_button(replies, "确认")
        answers = [await bridge.send("res-2", button=confirm, msg_id="msg_same") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.json().get("duplicate", False) for a in answers] == [False, True, True]
        assert answers[1].json()["replies"] == answers[0].json()["replies"]
        assert len(await all_requests(app)) == 1


def _signed(body: bytes, **overrides: Any) -> dict[str, str]:
    headers = make_headers(TEST_SECRET, body, msg_id="msg_bad")
    headers.update(overrides)
    headers["content-type"] = "application/json"
    return headers


async def _stored_count(app: Any) -> int:
    async with transaction(app.state.runtime.factory) as session:
        return int(await session.scalar(select(func.count(InboxEvent.id))) or 0)


async def test_rejections_store_nothing(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        good = json.dumps({"user": {"id": "u"}, "message": {"text": "你好"}}).encode()
        cases = [
            (PATH, good, {**_signed(good), "webhook-signature": "v1,AAAA"}, 401),
            (PATH, good, _signed(good, **{"webhook-signature": ""}), 401),
            (PATH, good, make_headers(TEST_SECRET, good, now=time.time() - 301), 401),
            (PATH, good, make_headers(TEST_SECRET, good, now=time.time() + 400), 401),
            ("/webhooks/generic/nope", good, _signed(good), 404),
            (PATH, b"{" * (64 * 1024 + 1), _signed(b"{" * (64 * 1024 + 1)), 413),
            (PATH, b"{not json", _signed(b"{not json"), 422),
            (
                PATH,
                b'{"user": {}, "message": {"text": "x"}}',
                _signed(b'{"user": {}, "message": {"text": "x"}}'),
                422,
            ),
            (
                PATH,
                b'{"user": {"id": "u"}, "message": {}}',
                _signed(b'{"user": {"id": "u"}, "message": {}}'),
                422,
            ),
        ]
        for path, body, headers, status in cases:
            response = await http.post(path, content=body, headers=headers)
            assert response.status_code == status, (status, response.text)
            assert "error" in response.json()
        assert await _stored_count(app) == 0
        assert await all_requests(app) == []


@pytest.mark.parametrize(
    ("text", "button", "expect"),
    [
        ("请帮帮忙" * 1250, None, "太长"),
        ("😀😀😀", None, None),
        ("", None, None),
        (None, "cf.zzzzzz", "过期"),
        (None, "rt.99999.5", None),
    ],
)
async def test_odd_input_gets_a_polite_answer(
    sqlite_url: str, tmp_path, text, button, expect
) -> None:
    settings = make_settings(sqlite_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        bridge = Bridge(http)
        await onboard(bridge, "res-3")
        replies = await bridge.say("res-3", text=text, button=button)
        assert replies and all(r["text"] for r in replies)
        if expect:
            assert expect in replies[0]["text"]
        assert await all_requests(app) == []


async def test_emergency_answers_numbers_first(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        from tests.e2e.harness import set_duty_notify

        await set_duty_notify(app, "桂花社区", "generic:bridge:duty-desk")
        bridge = Bridge(http)
        await onboard(bridge, "res-4")
        replies = await bridge.say("res-4", text="我妈在家摔倒了起不来了 快来人")
        assert "120" in replies[0]["text"]
        [request] = await all_requests(app)
        assert request.emergency and request.needs_review
        [alert] = await outbox_for(app, "duty-desk")
        assert "紧急" in alert.text and request.number in alert.text


async def test_resident_sees_only_own_requests(sqlite_url: str, tmp_path) -> None:
    settings = make_settings(sqlite_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        bridge = Bridge(http)
        await onboard(bridge, "alice")
        await onboard(bridge, "bob")
        replies = await bridge.say("alice", text="楼下垃圾好几天没人清运了 很臭")
        await bridge.say("alice", button=find_button(replies, "确认"))
        [request] = await all_requests(app)
        for button in (f"rq.{request.id}", f"rc.{request.id}", f"ry.{request.id}"):
            replies = await bridge.say("bob", button=button)
            assert request.number not in " ".join(r["text"] for r in replies)
        replies = await bridge.say("bob", button=f"oa.{request.id}")  # bob is no organization
        async with transaction(app.state.runtime.factory) as session:
            row = await session.get(Request, request.id)
            assert row is not None and row.status == request.status


async def test_unsure_classification_offers_candidates(sqlite_url: str, tmp_path) -> None:
    settings = make_settings(sqlite_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        bridge = Bridge(http)
        await onboard(bridge, "res-5")
        text = "帮忙看看电视和老人"  # weak evidence for two categories
        replies = await bridge.say("res-5", text=text)
        assert "不太确定" in replies[-1]["text"]
        labels = [b["text"] for b in replies[-1]["buttons"]]
        assert labels[:2] == ["养老助老", "家政便民"] and "都不是，交给工作人员" in labels
        replies = await bridge.say("res-5", button=find_button(replies, "家政便民"))
        assert "邻里帮便民服务社" in replies[-1]["text"]  # chosen by the resident: routed
        await bridge.say("res-5", button=find_button(replies, "确认"))
        [routed] = await all_requests(app)
        assert routed.status == "routed" and routed.category == "housekeeping"

        replies = await bridge.say("res-5", text="12345")  # asked for a phone: a bad number
        assert "号码好像不对" in replies[0]["text"]
        replies = await bridge.say("res-5", text=text)  # words instead: a new request
        await bridge.say("res-5", button=find_button(replies, "都不是，交给工作人员"))
        _, review = await all_requests(app)
        assert review.status == "pending_review" and review.review_reason == "low_confidence"
