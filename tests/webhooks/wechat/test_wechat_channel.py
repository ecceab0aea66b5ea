"""The WeChat Official Account channel end to end, in plaintext and safe mode, with replies
answered passively (in the HTTP response) or through the customer-service API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import Identity, Organization
from tests.e2e.harness import all_requests, client, make_settings, running_app
from tests.webhooks.wechat.wechat_support import OPENID, Follower, wechat_world
from tests.webhooks.wecom.wecom_support import AsgiCall, counts, option

MODES = {
    # (safe mode, seconds a step may take to be answered passively)
    "plaintext-api": (False, 0.0),
    "safe-passive": (True, 3.0),
}


async def onboard(follower: Follower) -> list[str]:
    texts = await follower.say(name="subscribe_event.xml")
    assert "邻里" in texts[0] and "回复 1：同意" in texts[0]
    texts = await follower.say(option(texts, "同意"))
    texts = await follower.say(option(texts, "梅园街道"))
    texts = await follower.say(option(texts, "桂花社区"))
    assert "桂花社区" in texts[0] and "跳过" in texts[0]  # then the activity-notice list
    texts = await follower.say(option(texts, "跳过"))
    assert "回复 2：反映需求" in texts[0]
    return texts


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_resident_files_a_need_by_numbers(
    database_url: str, tmp_path: Path, mode: str
) -> None:
    safe, passive_s = MODES[mode]
    async with wechat_world(database_url, tmp_path, safe=safe, passive_s=passive_s) as world:
        follower = Follower(world)
        texts = await onboard(follower)
        texts = await follower.say("楼道里的灯坏了好几天了，晚上黑漆漆的")
        assert "梅园物业服务中心" in texts[0] and "对吗" in texts[0]
        texts = await follower.say(option(texts, "确认"))
        assert "已受理" in texts[0]

        [request] = await all_requests(world.app)
        assert request.status == "routed" and request.source_channel == "wechat"
        async with transaction(world.app.state.runtime.factory) as session:
            org = await session.get(Organization, request.org_id)
            identity = await session.scalar(select(Identity).where(Identity.channel == "wechat"))
        assert org is not None and org.name == "梅园物业服务中心"
        assert identity is not None and identity.external_id == OPENID
        api = world.fake.messages(OPENID, api="wechat")
        if passive_s:  # every answer was in the HTTP response: no quota used, no token needed
            assert api == [] and world.fake.token_calls["wechat"] == 0
        else:
            assert len(api) == 7 and world.fake.token_calls["wechat"] == 1


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_same_msgid_twice_acts_once(database_url: str, tmp_path: Path, mode: str) -> None:
    safe, passive_s = MODES[mode]
    async with wechat_world(database_url, tmp_path, safe=safe, passive_s=passive_s) as world:
        follower = Follower(world)
        await onboard(follower)
        texts = await follower.say("小区路灯坏了 晚上太黑")
        number = option(texts, "确认")
        first = await follower.send(Content=number, MsgId=9000000001)
        again = await follower.send(Content=number, MsgId=9000000001)
        assert len(await all_requests(world.app)) == 1
        assert again.text == "success"
        answered = world.read_reply(first)
        resent = await follower.received()
        if passive_s:
            # WeChat retries only when our answer did not arrive: the retry makes the
            # customer-service API send the stored answer, once.
            assert answered is not None and "已受理" in answered and resent == [answered]
        else:
            assert answered is None and len(resent) == 1 and "已受理" in resent[0]


async def test_compatible_mode_trusts_only_encrypt(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, safe=True, compatible=True) as world:
        follower = Follower(world)
        real = follower.message(FromUserName="oREAL")
        shown = follower.message(FromUserName="oFORGED", Content="删除我的信息")
        query, body = world.platform.signed(real, shown=shown)
        response = await world.platform.post_raw(query, body)
        assert response.text == "success"
        await world.deliver()
        assert world.fake.messages("oFORGED") == []
        assert "同意" in world.fake.messages("oREAL")[0]


async def test_slow_step_answers_success_then_the_api(sqlite_url: str, tmp_path: Path) -> None:
    """Over the passive budget: ``success`` is on the wire while the step is still blocked,
    and the reply goes through the customer-service API once the step is done."""
    async with wechat_world(sqlite_url, tmp_path, safe=True, passive_s=0.05) as world:
        runtime = world.app.state.runtime
        release = asyncio.Event()
        original = runtime.dialog.handle

        async def slow_handle(*args, **kwargs):  # type: ignore[no-untyped-def]
            await release.wait()
            return await original(*args, **kwargs)

        runtime.dialog.handle = slow_handle
        follower = Follower(world)
        query, body = world.platform.signed(follower.message())
        call = AsgiCall(world.app, "/webhooks/wechat", query, body)
        await call.answered.wait()
        assert (call.status, call.body) == (200, b"success")
        assert world.fake.messages(OPENID) == []
        release.set()
        await call.done()
        assert "同意" in (await follower.received())[0]


async def test_plaintext_post_to_a_safe_account_is_refused(sqlite_url: str, tmp_path) -> None:
    async with wechat_world(sqlite_url, tmp_path, safe=True) as world:
        plain = Follower(world).message()
        query, _ = world.platform.signed(plain)
        query = "&".join(p for p in query.split("&") if not p.startswith("encrypt_type"))
        response = await world.platform.post_raw(query, plain.encode())
        assert response.status_code == 403
        assert await counts(world.app) == (0, 0, 0)


async def test_not_configured_answers_404(sqlite_url: str, tmp_path: Path) -> None:
    async with running_app(make_settings(sqlite_url, tmp_path), demo=False) as app:
        async with client(app) as http:
            assert (await http.get("/webhooks/wechat?echostr=x")).status_code == 404
            assert (await http.post("/webhooks/wechat", content=b"<xml/>")).status_code == 404


# ---- one test per fixture -----------------------------------------------------------------------
async def test_text_message(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, passive_s=3.0) as world:
        texts = await Follower(world).say(name="text_message.xml")
        assert len(texts) == 1 and "回复 1：同意" in texts[0]


async def test_subscribe_event(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, safe=True, passive_s=3.0) as world:
        texts = await Follower(world).say(name="subscribe_event.xml")
        assert texts[0].startswith("您好") and "回复 2：不同意" in texts[0]


async def test_voice_message(sqlite_url: str, tmp_path: Path) -> None:
    """WeChat's speech recognition makes a voice message a text message."""
    async with wechat_world(sqlite_url, tmp_path, passive_s=3.0) as world:
        follower = Follower(world)
        await onboard(follower)
        texts = await follower.say(name="voice_message.xml")
        assert "环境物业" in texts[0] and "回复 1：确认" in texts[0]
        texts = await follower.say(name="voice_message.xml", Recognition="")
        assert "请用文字描述" in texts[0]


async def test_image_message(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, passive_s=3.0) as world:
        follower = Follower(world)
        await onboard(follower)
        texts = await follower.say(name="image_message.xml")
        assert "请用文字描述" in texts[0] and "回复 2：反映需求" in texts[0]


async def test_location_message(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, passive_s=3.0) as world:
        follower = Follower(world)
        await onboard(follower)
        texts = await follower.say(name="location_message.xml")
        assert texts[0].startswith("收到您的位置：桂花社区3幢。")
        texts = await follower.say("2")  # the numbers still refer to the menu shown before
        assert "遇到的问题" in texts[0]


async def test_click_event(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, passive_s=3.0) as world:
        follower = Follower(world)
        await onboard(follower)
        texts = await follower.say(name="click_event.xml")  # custom menu key m.mine
        assert "还没有提交过诉求" in texts[0]


async def test_unsubscribe_event(sqlite_url: str, tmp_path: Path) -> None:
    async with wechat_world(sqlite_url, tmp_path, passive_s=3.0) as world:
        response = await Follower(world).send("unsubscribe_event.xml")
        assert response.text == "success"
        assert await counts(world.app) == (0, 0, 0)
