"""The Feishu/Lark bot channel end to end: encrypted, signed events in; a user is onboarded
and files a need by numbers; replies through the message API with one cached tenant token;
the organization's custom bot gets the routed request, signed, with a dashboard link."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from community.audit import Actor
from community.requests import accept_request, resolve_request
from storage.db import transaction
from storage.models import Identity, OutboxMessage
from tests.e2e.harness import all_requests, client, make_settings, running_app, set_org_notify
from tests.webhooks.dingtalk.dingtalk_support import AsgiCall
from tests.webhooks.feishu.feishu_support import (
    PUBLIC_URL,
    User,
    feishu_world,
    fixture,
    message_event,
)
from tests.webhooks.wecom.wecom_support import counts, option

BOT_HOOK = "2f0e6b3a-8c1d-4e5f-9a7b-6c5d4e3f2a1b"
BOT_SECRET = "mLk2Zp9QbX4tRv7WcY1sAe"


async def onboard(user: User) -> list[str]:
    texts = await user.say("你好")
    assert "邻里" in texts[0] and "回复 1：同意" in texts[0]
    texts = await user.say(option(texts, "同意"))
    texts = await user.say(option(texts, "梅园街道"))
    texts = await user.say(option(texts, "桂花社区"))
    assert "桂花社区" in texts[0]
    if "跳过" in texts[-1]:  # a further onboarding step (activity interests): not needed here
        texts = await user.say(option(texts, "跳过"))
    option(texts, "反映需求")  # the menu is shown
    return texts


async def test_resident_files_a_need_and_rates_it(database_url: str, tmp_path: Path) -> None:
    async with feishu_world(database_url, tmp_path) as world:
        world.fake.add_bot(BOT_HOOK, BOT_SECRET)
        await set_org_notify(world.app, "梅园物业服务中心", f"feishu-robot:{BOT_HOOK}#{BOT_SECRET}")
        user = User(world, "ou_84aad35d084aa403a838cf73ee18467")
        texts = await onboard(user)
        texts = await user.say(option(texts, "反映需求"))
        texts = await user.say("楼道里的灯坏了好几天了，晚上黑漆漆的")
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]
        texts = await user.say(option(texts, "确认"))
        assert "已受理" in texts[0]

        [request] = await all_requests(world.app)
        assert request.status == "routed" and request.source_channel == "feishu"
        async with transaction(world.app.state.runtime.factory) as session:
            identity = await session.scalar(select(Identity).where(Identity.channel == "feishu"))
        assert identity is not None and identity.external_id == user.open_id
        assert world.fake.token_calls == 1  # one tenant token for every reply

        [bot] = [s for s in world.fake.sent if s.via == "bot"]  # signed: the fake checked
        assert bot.target == BOT_HOOK and bot.payload["msg_type"] == "post"
        post = bot.payload["content"]["post"]["zh_cn"]
        assert request.number in post["title"]
        link = post["content"][-1][-1]
        assert link == {
            "tag": "a",
            "text": f"{PUBLIC_URL}/staff/requests/{request.id}",
            "href": f"{PUBLIC_URL}/staff/requests/{request.id}",
        }

        async with transaction(world.app.state.runtime.factory) as session:
            org = Actor("org", str(request.org_id))
            await accept_request(session, request.id, request.org_id, org)
            await resolve_request(session, request.id, request.org_id, org, "灯已换好")
        texts = await user.received()
        resolved = next(t for t in texts if "已办结" in t)
        await user.say(option([resolved], "★★★★★ 非常满意"))
        [request] = await all_requests(world.app)
        assert request.rating == 5


async def test_duplicates_act_once(database_url: str, tmp_path: Path) -> None:
    """A re-push (same event) and the same message under a new event_id: one request."""
    async with feishu_world(database_url, tmp_path) as world:
        user = User(world, "ou_li")
        await onboard(user)
        texts = await user.say("小区路灯坏了 晚上太黑")
        number = option(texts, "确认")
        event = message_event(open_id=user.open_id, text=number)
        again = json.loads(json.dumps(event))
        again["header"]["event_id"] = "ev-another-id-for-the-same-message"
        for payload in (event, event, again):
            response = await world.platform.post(payload)
            assert (response.status_code, response.json()) == (200, {"msg": "success"})
        texts = await user.received()
        assert len(await all_requests(world.app)) == 1
        assert len(texts) == 1 and "已受理" in texts[0]


async def test_plaintext_mode(sqlite_url: str, tmp_path: Path) -> None:
    """No Encrypt Key configured: plain JSON bodies, the verification token is the check."""
    async with feishu_world(sqlite_url, tmp_path, encrypted=False) as world:
        user = User(world, "ou_plain")
        assert "同意" in (await user.say("你好"))[0]
        forged = message_event(open_id="ou_plain", text="1")
        forged["header"]["token"] = "not-our-token"
        response = await world.platform.post(forged)
        assert response.status_code == 403
        assert await user.received() == []


async def test_tenant_token_refreshed_when_refused(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        user = User(world, "ou_wang")
        assert len(await user.say("你好")) == 1
        world.fake.expire_tokens()  # 99991677 on the next send: refresh once, resend
        assert "梅园街道" in (await user.say("1"))[0]
        assert world.fake.token_calls == 2
        paths = [code for path, code in world.fake.calls if path.endswith("/messages")]
        assert paths == [0, 99991677, 0]


async def test_acknowledges_before_the_dialog_finishes(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        runtime = world.app.state.runtime
        release, started = asyncio.Event(), asyncio.Event()
        original = runtime.dialog.handle

        async def slow_handle(*args, **kwargs):  # type: ignore[no-untyped-def]
            started.set()
            await release.wait()
            return await original(*args, **kwargs)

        runtime.dialog.handle = slow_handle
        body = world.platform.body(json.dumps(message_event(open_id="ou_slow")))
        call = AsgiCall(world.app, "/webhooks/feishu", body, world.platform.headers(body))
        await call.answered.wait()
        assert (call.status, json.loads(call.body)) == (200, {"msg": "success"})
        await started.wait()
        assert world.fake.sent == [] and not call.finished
        release.set()
        await call.done()
        await world.deliver()
        assert "同意" in world.fake.sent[0].content


async def test_unreachable_user_is_marked(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        world.fake.unreachable.add("ou_gone")
        assert await User(world, "ou_gone").say("你好") == []
        async with transaction(world.app.state.runtime.factory) as session:
            row = await session.scalar(select(OutboxMessage))
            identity = await session.scalar(select(Identity).where(Identity.channel == "feishu"))
        assert row is not None and row.status == "gone" and "230013" in (row.last_error or "")
        assert identity is not None and identity.reachable is False


async def test_not_configured_answers_404(sqlite_url: str, tmp_path: Path) -> None:
    async with running_app(make_settings(sqlite_url, tmp_path), demo=False) as app:
        async with client(app) as http:
            assert (await http.post("/webhooks/feishu", content=b"{}")).status_code == 404


# ---- one test per fixture -----------------------------------------------------------------------
@pytest.mark.parametrize("encrypted", [True, False])
async def test_url_verification(sqlite_url: str, tmp_path: Path, encrypted: bool) -> None:
    """Answered without signature headers, encrypted or not; a wrong token is refused."""
    async with feishu_world(sqlite_url, tmp_path, encrypted=encrypted) as world:
        challenge = fixture("url_verification.json")
        response = await world.platform.post(challenge, signed=False)
        assert response.status_code == 200
        assert response.json() == {"challenge": "ajls384kdjx98XX"}
        response = await world.platform.post(challenge | {"token": "xxxxxx"}, signed=False)
        assert response.status_code == 403
        assert await counts(world.app) == (0, 0, 0)


async def test_text_message(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        texts = await User(world, "ou_zhang").say(name="text_message.json")
        assert len(texts) == 1 and "回复 1：同意" in texts[0]


@pytest.mark.parametrize("name", ["image_message.json", "audio_message.json", "file_message.json"])
async def test_media_messages_ask_for_words(sqlite_url: str, tmp_path: Path, name: str) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        user = User(world, "ou_zhang")
        await onboard(user)
        texts = await user.say(name=name)
        assert "请用文字描述" in texts[0] and "许个微心愿" in texts[0]


async def test_post_message(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        user = User(world, "ou_zhang")
        await onboard(user)
        texts = await user.say(name="post_message.json")  # title and words around an image
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]


async def test_location_message(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        user = User(world, "ou_zhang")
        menu = await onboard(user)
        texts = await user.say(name="location_message.json")
        assert texts == [
            "收到您的位置：桂花社区3幢。\n请再用文字说说是什么事情，我好帮您转给能帮忙的组织。"
        ]
        texts = await user.say(option(menu, "反映需求"))  # the menu's numbers still hold
        assert "遇到的问题" in texts[0]


@pytest.mark.parametrize("name", ["group_text_message.json", "p2p_chat_entered_event.json"])
async def test_events_not_acted_on(sqlite_url: str, tmp_path: Path, name: str) -> None:
    async with feishu_world(sqlite_url, tmp_path) as world:
        response = await world.platform.post(fixture(name) | {})
        assert (response.status_code, response.json()) == (200, {"msg": "success"})
        await world.deliver()
        assert await counts(world.app) == (0, 0, 0) and world.fake.sent == []
