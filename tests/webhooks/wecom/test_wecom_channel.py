"""The WeCom app channel end to end: a member is onboarded and files a need by answering with
numbers; every reply travels through the outbox and ``message/send`` of the fake platform."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import Identity, InboxEvent, Organization, OutboxMessage
from tests.e2e.harness import all_requests, client, make_settings, running_app
from tests.webhooks.wecom.wecom_support import (
    AsgiCall,
    Member,
    counts,
    fixture,
    option,
    wecom_world,
)


async def onboard(member: Member) -> list[str]:
    texts = await member.say(name="subscribe_event.xml")
    assert "邻里" in texts[0] and "回复 1：同意" in texts[0]
    texts = await member.say(option(texts, "同意"))
    texts = await member.say(option(texts, "梅园街道"))
    texts = await member.say(option(texts, "桂花社区"))
    assert "桂花社区" in texts[0] and "跳过" in texts[0]  # then the activity-notice list
    texts = await member.say(option(texts, "跳过"))
    assert "回复 2：反映需求" in texts[0]
    return texts


async def test_resident_files_a_need_by_numbers(database_url: str, tmp_path: Path) -> None:
    async with wecom_world(database_url, tmp_path) as world:
        member = Member(world, "ZhangAYi")
        texts = await onboard(member)
        texts = await member.say(option(texts, "反映需求"))
        assert "遇到的问题" in texts[0]
        texts = await member.say("楼道里的灯坏了好几天了，晚上黑漆漆的")
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]
        texts = await member.say(option(texts, "确认"))
        assert "已受理" in texts[0]

        [request] = await all_requests(world.app)
        assert request.status == "routed" and request.source_channel == "wecom"
        assert request.number in texts[0]
        async with transaction(world.app.state.runtime.factory) as session:
            org = await session.get(Organization, request.org_id)
            identity = await session.scalar(select(Identity).where(Identity.channel == "wecom"))
        assert org is not None and org.name == "梅园物业服务中心"
        assert identity is not None and identity.external_id == "ZhangAYi"
        # One message per resident message, each within WeCom's limit, one token for all.
        assert len(world.fake.messages("ZhangAYi")) == 8
        assert all(len(m.encode()) <= 2048 for m in world.fake.messages())
        assert world.fake.token_calls["wecom"] == 1


async def test_same_msgid_twice_acts_once(database_url: str, tmp_path: Path) -> None:
    async with wecom_world(database_url, tmp_path) as world:
        member = Member(world, "LiShuShu")
        await onboard(member)
        texts = await member.say("小区路灯坏了 晚上太黑")
        number = option(texts, "确认")
        answers = [await member.send(Content=number, MsgId=555000111) for _ in range(2)]
        assert [(a.status_code, a.text) for a in answers] == [(200, ""), (200, "")]
        texts = await member.received()
        assert len(await all_requests(world.app)) == 1
        assert [t for t in texts if "已受理" in t] == texts[:1] and len(texts) == 1


async def test_acknowledges_before_the_dialog_finishes(sqlite_url: str, tmp_path: Path) -> None:
    """The empty 200 is on the wire before the dialog step, which may take its time."""
    async with wecom_world(sqlite_url, tmp_path) as world:
        runtime = world.app.state.runtime
        release, started = asyncio.Event(), asyncio.Event()
        original = runtime.dialog.handle

        async def slow_handle(*args, **kwargs):  # type: ignore[no-untyped-def]
            started.set()
            await release.wait()
            return await original(*args, **kwargs)

        runtime.dialog.handle = slow_handle
        query, body = world.platform.signed(fixture("text_message.xml", FromUserName="WangBo"))
        call = AsgiCall(world.app, "/webhooks/wecom", query, body)
        await call.answered.wait()
        assert (call.status, call.body) == (200, b"")
        await started.wait()  # the step runs after the acknowledgment, and is blocked
        assert world.fake.messages("WangBo") == [] and not call.finished
        release.set()
        await call.done()
        await world.deliver()
        assert "同意" in world.fake.messages("WangBo")[0]


async def test_a_failing_dialog_still_gets_200(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:

        async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

        world.app.state.runtime.dialog.handle = broken
        member = Member(world, "ZhaoLi")
        texts = await member.say("你好")
        assert "出了点小问题" in texts[0]


async def test_pending_event_is_replayed_after_a_crash(sqlite_url: str, tmp_path: Path) -> None:
    """An event stored but never processed (crash after the ack) is answered later, once."""
    async with wecom_world(sqlite_url, tmp_path, inbox_recovery_seconds=0.0) as world:
        runtime = world.app.state.runtime
        plaintext = fixture("text_message.xml", FromUserName="SunMei", MsgId=42)
        assert await runtime.inbox.store("wecom", "m:42", plaintext) is not None
        member = Member(world, "SunMei")
        texts = await member.say(name="enter_agent_event.xml")  # any callback: recovery
        assert len(texts) == 1 and "同意" in texts[0]
        async with transaction(runtime.factory) as session:
            row = await session.scalar(select(InboxEvent).where(InboxEvent.event_key == "m:42"))
        assert row is not None and row.status == "done"
        await member.say(name="enter_agent_event.xml")
        assert await member.received() == []


async def test_other_agent_is_ignored(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:
        response = await Member(world, "ZhangAYi").send(AgentID=1000099)
        assert (response.status_code, response.text) == (200, "")
        assert await counts(world.app) == (0, 0, 0)


async def test_not_configured_answers_404(sqlite_url: str, tmp_path: Path) -> None:
    async with running_app(make_settings(sqlite_url, tmp_path), demo=False) as app:
        async with client(app) as http:
            assert (await http.get("/webhooks/wecom?echostr=x")).status_code == 404
            assert (await http.post("/webhooks/wecom", content=b"<xml/>")).status_code == 404


# ---- one test per fixture -----------------------------------------------------------------------
async def test_text_message(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:
        texts = await Member(world, "ZhangAYi").say(name="text_message.xml")
        assert len(texts) == 1 and "回复 1：同意" in texts[0]


async def test_subscribe_event(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:
        member = Member(world, "ZhangAYi")
        texts = await member.say(name="subscribe_event.xml")
        assert texts[0].startswith("您好") and "回复 2：不同意" in texts[0]
        response = await member.send("subscribe_event.xml", CreateTime=1714036900)
        response = await member.send("subscribe_event.xml", CreateTime=1714036900)
        assert response.status_code == 200 and len(await member.received()) == 1


@pytest.mark.parametrize("name", ["voice_message.xml", "image_message.xml"])
async def test_voice_and_image_messages(sqlite_url: str, tmp_path: Path, name: str) -> None:
    """WeCom sends no Recognition for an app: voice, like an image, asks for words."""
    async with wecom_world(sqlite_url, tmp_path) as world:
        member = Member(world, "ZhangAYi")
        await onboard(member)
        texts = await member.say(name=name)
        assert "请用文字描述" in texts[0] and "回复 1：许个微心愿" in texts[0]


async def test_location_message(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:
        member = Member(world, "ZhangAYi")
        texts = await onboard(member)
        texts = await member.say(name="location_message.xml")
        assert texts == [
            "收到您的位置：浙江省杭州市西湖区桂花社区3幢。\n"
            "请再用文字说说是什么事情，我好帮您转给能帮忙的组织。"
        ]
        texts = await member.say("2")  # the numbers still refer to the menu shown before
        assert "遇到的问题" in texts[0]


async def test_click_event(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:
        member = Member(world, "ZhangAYi")
        await onboard(member)
        texts = await member.say(name="click_event.xml")  # custom menu key m.need
        assert "遇到的问题" in texts[0]


async def test_enter_agent_event(sqlite_url: str, tmp_path: Path) -> None:
    async with wecom_world(sqlite_url, tmp_path) as world:
        assert await Member(world, "ZhangAYi").say(name="enter_agent_event.xml") == []
        inbox, _, outbox = await counts(world.app)
        assert (inbox, outbox) == (0, 0)
        async with transaction(world.app.state.runtime.factory) as session:
            assert await session.scalar(select(OutboxMessage.id)) is None


async def test_platform_limits_and_departures_reach_the_outbox(
    sqlite_url: str, tmp_path: Path
) -> None:
    """45009 keeps the reply for later (not lost); an unknown member is marked unreachable."""
    async with wecom_world(sqlite_url, tmp_path) as world:
        world.fake.rate_limit_per_min = 1
        member = Member(world, "ZhouXin")
        assert len(await member.say("你好")) == 1
        assert await member.say("你好") == []
        world.fake.invalid_users.add("QianGone")
        assert await Member(world, "QianGone").say("你好") == []
        async with transaction(world.app.state.runtime.factory) as session:
            rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
            gone = await session.scalar(select(Identity).where(Identity.external_id == "QianGone"))
        assert [(r.target, r.status) for r in rows] == [
            ("ZhouXin", "sent"),
            ("ZhouXin", "pending"),
            ("QianGone", "gone"),
        ]
        assert (
            "45009" in (rows[1].last_error or "") and rows[1].next_attempt_at > rows[1].created_at
        )
        assert gone is not None and gone.reachable is False


async def test_a_notice_options_are_answered_by_number(sqlite_url: str, tmp_path: Path) -> None:
    """The stars after 已办结 arrive as a notice, not as a dialog step; a bare number still
    picks one of them, because the notice's options become the numbered answers."""
    from community.audit import Actor
    from community.requests import accept_request, resolve_request

    async with wecom_world(sqlite_url, tmp_path) as world:
        member = Member(world, "ZhaoNaiNai")
        await onboard(member)
        texts = await member.say("楼道里的灯坏了好几天了")
        await member.say(option(texts, "确认"))
        [request] = await all_requests(world.app)
        async with transaction(world.app.state.runtime.factory) as session:
            org = Actor("org", str(request.org_id))
            await accept_request(session, request.id, request.org_id, org)
            await resolve_request(session, request.id, request.org_id, org, "灯已换好")
        texts = await member.received()
        resolved = next(t for t in texts if "已办结" in t)
        await member.say(option([resolved], "★★★★★ 非常满意"))
        [request] = await all_requests(world.app)
        assert request.rating == 5
