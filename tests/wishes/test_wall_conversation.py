"""The wish wall through the generic channel: a neighbour claims a wish, fulfils it, the
wisher confirms (圆梦) and rates, and the volunteer's points arrive once."""

from __future__ import annotations

from sqlalchemy import select

from community.timebank import user_balance
from community.wishes import WISH_POINTS
from storage.db import transaction
from storage.models import Identity, Request, WishClaim
from tests.e2e.harness import all_requests, client, find_button, make_settings, running_app
from tests.support.bridge import Bridge, onboard


async def _user_id(app, external_id: str) -> int:
    async with transaction(app.state.runtime.factory) as session:
        return int(
            await session.scalar(
                select(Identity.user_id).where(Identity.external_id == external_id)
            )
        )


async def test_claim_fulfil_confirm_through_chat(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with running_app(settings) as app, client(app) as http:
        bridge = Bridge(http)
        await onboard(bridge, "wisher")
        await onboard(bridge, "helper")
        replies = await bridge.say("wisher", button="m.wish")
        replies = await bridge.say("wisher", text="想要一台收音机 每天听听戏 我电话13812345678")
        replies = await bridge.say("wisher", button=find_button(replies, "确认"))
        [wish] = await all_requests(app)
        assert wish.kind == "wish" and wish.status == "routed"

        # The wall shows it masked; the wisher cannot claim their own wish.
        replies = await bridge.say("helper", text="心愿墙")
        assert wish.number in replies[0]["text"] and "13812345678" not in replies[0]["text"]
        replies = await bridge.say("helper", text="1")  # the numbered answer: view the first
        assert "愿意帮忙" in replies[0]["text"]
        own = await bridge.say("wisher", button=f"wk.{wish.id}")
        assert "自己" in own[0]["text"]

        replies = await bridge.say("helper", button=find_button(replies, "我来认领"))
        assert "您认领了心愿" in replies[0]["text"] and "13812345678" not in replies[0]["text"]
        replies = await bridge.say("helper", button=find_button(replies, "已完成，提交说明"))
        replies = await bridge.say("helper", text="收音机已经送到王阿姨家了")
        assert "谢谢" in replies[0]["text"]

        replies = await bridge.say("wisher", button=f"wc.{wish.id}")
        assert "圆梦" in replies[0]["text"]
        replies = await bridge.say("wisher", button=find_button(replies, "★★★★★ 非常满意"))
        # Pressing the confirmation again changes nothing.
        again = await bridge.say("wisher", button=f"wc.{wish.id}")
        assert "不需要确认" in again[0]["text"]

        helper_id = await _user_id(app, "helper")
        async with transaction(app.state.runtime.factory) as session:
            assert await user_balance(session, helper_id) == WISH_POINTS
            request = await session.get(Request, wish.id)
            assert request.status == "resolved" and request.rating == 5
            [claim] = list(await session.scalars(select(WishClaim)))
            assert claim.status == "confirmed" and claim.proof_note.startswith("收音机")
