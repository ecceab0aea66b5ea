"""The DingTalk robot channel end to end: a member is onboarded and files a need by answering
with numbers; replies go through the outbox and the conversation's sessionWebhook (or the
robot API once it has expired); the organization's custom group robot gets the routed
request, signed, with a link to the dashboard; the resident rates by number."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from community.audit import Actor
from community.requests import accept_request, resolve_request
from storage.db import transaction
from storage.models import Identity, InboxEvent
from tests.e2e.harness import all_requests, client, make_settings, running_app, set_org_notify
from tests.support.fake_dingtalk import dingtalk_headers
from tests.webhooks.dingtalk.dingtalk_support import (
    APP_SECRET,
    PUBLIC_URL,
    AsgiCall,
    Member,
    dingtalk_world,
)
from tests.webhooks.wecom.wecom_support import counts, option

ROBOT_TOKEN = "5b7c0e1f2a3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b"
ROBOT_SECRET = "SEC8c3f0e1d2b4a69788f7e6d5c4b3a29180f7e6d5c4b3a2918"


async def onboard(member: Member) -> list[str]:
    texts = await member.say("你好")
    assert "邻里" in texts[0] and "回复 1：同意" in texts[0]
    texts = await member.say(option(texts, "同意"))
    texts = await member.say(option(texts, "梅园街道"))
    texts = await member.say(option(texts, "桂花社区"))
    assert "桂花社区" in texts[0]
    if "跳过" in texts[-1]:  # a further onboarding step (activity interests): not needed here
        texts = await member.say(option(texts, "跳过"))
    option(texts, "反映需求")  # the menu is shown
    return texts


async def test_resident_files_a_need_and_rates_it(database_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(database_url, tmp_path) as world:
        world.fake.add_robot(ROBOT_TOKEN, ROBOT_SECRET)
        await set_org_notify(
            world.app, "梅园物业服务中心", f"dingtalk-robot:{ROBOT_TOKEN}:{ROBOT_SECRET}"
        )
        member = Member(world, "zhangayi01")
        texts = await onboard(member)
        texts = await member.say(option(texts, "反映需求"))
        assert "遇到的问题" in texts[0]
        texts = await member.say("楼道里的灯坏了好几天了，晚上黑漆漆的")
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]
        texts = await member.say(option(texts, "确认"))
        assert "已受理" in texts[0]

        [request] = await all_requests(world.app)
        assert request.status == "routed" and request.source_channel == "dingtalk"
        async with transaction(world.app.state.runtime.factory) as session:
            identity = await session.scalar(select(Identity).where(Identity.channel == "dingtalk"))
        assert identity is not None and identity.external_id == "zhangayi01"
        # Every reply went through the conversation's sessionWebhook: no token was needed.
        assert {s.via for s in world.fake.sent if s.target == "zhangayi01"} == {"session"}
        assert world.fake.token_calls == 0

        # The organization's group robot: signed (the fake checks), a link instead of buttons.
        [robot] = [s for s in world.fake.sent if s.via == "robot"]
        assert robot.target == ROBOT_TOKEN and request.number in robot.content
        assert f"{PUBLIC_URL}/staff/requests/{request.id}" in robot.content
        assert "接单、退回" in robot.content and robot.payload["msgtype"] == "text"

        async with transaction(world.app.state.runtime.factory) as session:
            org = Actor("org", str(request.org_id))
            await accept_request(session, request.id, request.org_id, org)
            await resolve_request(session, request.id, request.org_id, org, "灯已换好")
        texts = await member.received()
        resolved = next(t for t in texts if "已办结" in t)
        await member.say(option([resolved], "★★★★★ 非常满意"))
        [request] = await all_requests(world.app)
        assert request.rating == 5 and request.status == "resolved"


async def test_same_msgid_twice_acts_once(database_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(database_url, tmp_path) as world:
        member = Member(world, "lishushu02")
        await onboard(member)
        texts = await member.say("小区路灯坏了 晚上太黑")
        number = option(texts, "确认")
        answers = [await member.send(text=number, msgId="msgSameId0001==") for _ in range(2)]
        assert [(a.status_code, a.json()) for a in answers] == [(200, {}), (200, {})]
        texts = await member.received()
        assert len(await all_requests(world.app)) == 1
        assert len(texts) == 1 and "已受理" in texts[0]


async def test_expired_session_falls_back_to_the_robot_api(sqlite_url: str, tmp_path: Path) -> None:
    """A sessionWebhook about to expire is not used; one DingTalk already expired (300001)
    is forgotten; both times the robot API delivers, with one cached token."""
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        short = Member(world, "wangbo03", session_ttl_s=30)  # under the one-minute margin
        assert "同意" in (await short.say("你好"))[0]
        member = Member(world, "zhaoli04")
        await member.say("你好")
        assert (await member.send(text="1")).status_code == 200
        world.fake.expire_sessions()  # between the callback and our reply
        assert "梅园街道" in (await member.received())[0]
        vias = [(s.target, s.via) for s in world.fake.sent]
        assert vias == [("wangbo03", "api"), ("zhaoli04", "session"), ("zhaoli04", "api")]
        assert world.fake.token_calls == 1
        assert world.fake.answered("/robot/sendBySession") == {0: 1, 300001: 1}


async def test_session_webhook_elsewhere_is_never_called(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        member = Member(world, "zhaoli04")
        texts = await member.say("你好", sessionWebhook="https://evil.example/robot/sendBySession")
        assert "同意" in texts[0]
        assert [s.via for s in world.fake.sent] == ["api"]


async def test_acknowledges_before_the_dialog_finishes(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        runtime = world.app.state.runtime
        release, started = asyncio.Event(), asyncio.Event()
        original = runtime.dialog.handle

        async def slow_handle(*args, **kwargs):  # type: ignore[no-untyped-def]
            started.set()
            await release.wait()
            return await original(*args, **kwargs)

        runtime.dialog.handle = slow_handle
        member = Member(world, "wangbo03")
        body = json.dumps(member.payload(), ensure_ascii=False).encode()
        call = AsgiCall(world.app, "/webhooks/dingtalk", body, dingtalk_headers(APP_SECRET))
        await call.answered.wait()
        assert (call.status, json.loads(call.body)) == (200, {})
        await started.wait()  # the step runs after the acknowledgment, and is blocked
        assert world.fake.sent == [] and not call.finished
        release.set()
        await call.done()
        await world.deliver()
        assert "同意" in world.fake.sent[0].content


async def test_a_failing_dialog_still_gets_200(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:

        async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

        world.app.state.runtime.dialog.handle = broken
        texts = await Member(world, "zhaoli04").say("你好")
        assert "出了点小问题" in texts[0]


async def test_pending_event_is_replayed_after_a_crash(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path, inbox_recovery_seconds=0.0) as world:
        runtime = world.app.state.runtime
        member = Member(world, "sunmei05")
        stored = json.dumps(member.payload(msgId="msgCrashed0001=="), ensure_ascii=False)
        assert await runtime.inbox.store("dingtalk", "m:msgCrashed0001==", stored) is not None
        await member.send("group_text_message.json")  # any callback triggers recovery
        texts = await member.received()
        assert len(texts) == 1 and "同意" in texts[0]
        async with transaction(runtime.factory) as session:
            row = await session.scalar(
                select(InboxEvent).where(InboxEvent.event_key == "m:msgCrashed0001==")
            )
        assert row is not None and row.status == "done"


async def test_not_configured_answers_404(sqlite_url: str, tmp_path: Path) -> None:
    async with running_app(make_settings(sqlite_url, tmp_path), demo=False) as app:
        async with client(app) as http:
            assert (await http.post("/webhooks/dingtalk", content=b"{}")).status_code == 404


# ---- one test per fixture -----------------------------------------------------------------------
async def test_text_message(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        texts = await Member(world, "zhangayi01").say(name="text_message.json")
        assert len(texts) == 1 and "回复 1：同意" in texts[0]


@pytest.mark.parametrize("name", ["picture_message.json", "file_message.json"])
async def test_picture_and_file_messages(sqlite_url: str, tmp_path: Path, name: str) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        member = Member(world, "zhangayi01")
        await onboard(member)
        texts = await member.say(name=name)
        assert "请用文字描述" in texts[0] and "许个微心愿" in texts[0]


async def test_audio_message_uses_the_recognition(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        member = Member(world, "zhangayi01")
        await onboard(member)
        texts = await member.say(name="audio_message.json")  # 「楼道里的灯坏了好几天了」
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]


async def test_rich_text_message(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        member = Member(world, "zhangayi01")
        await onboard(member)
        texts = await member.say(name="rich_text_message.json")  # words around a picture
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]


async def test_group_text_message_is_not_stored(sqlite_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        response = await Member(world, "lishushu02").send("group_text_message.json")
        assert (response.status_code, response.json()) == (200, {})
        await world.deliver()
        assert await counts(world.app) == (0, 0, 0) and world.fake.sent == []
