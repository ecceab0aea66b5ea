"""志愿活动 and 我的积分 through the generic channel, on both backends, with a frozen clock:
browse → details → sign up → full → waiting list → a cancel promotes → check-in by code
(two activities that day) → wrong code → twice → check-out → the organizer finishes →
points → redeem (too few, then enough) → family code → transfers (within, over the limit,
to oneself). Numbered answers (「1」) pick from every list on the way."""

from __future__ import annotations

import re
from datetime import timedelta

from community.activities import finish_activity
from community.audit import Actor
from community.clock import use_clock
from community.timebank import create_reward, issue_certificate, user_balance
from storage.db import transaction
from tests.dialogs.chat import (
    START,
    THURSDAY_10,
    Resident,
    code_now,
    ledger_state,
    notices_to,
    org_id,
    publish,
    user_id,
)
from tests.e2e.harness import client, make_settings, running_app
from tests.support.bridge import Bridge, onboard

ELDERLY_ORG = "夕阳红居家养老服务中心"
CULTURE_ORG = "悦动文体协会"


async def test_activity_to_points_to_family(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    with use_clock(START) as clock:
        async with running_app(settings) as app, client(app) as http:
            bridge = Bridge(http)
            for name in ("ana", "bo", "cai"):
                await onboard(bridge, name)
            ana, bo, cai = (Resident(bridge, n) for n in ("ana", "bo", "cai"))
            visit = await publish(
                app,
                ELDERLY_ORG,
                title="敬老院陪伴",
                category="elderly",
                starts_at=THURSDAY_10,
                capacity=1,
                points_rate=600,
                description="陪老人聊天、读报。",
            )
            reading = await publish(
                app,
                CULTURE_ORG,
                title="社区读书会",
                category="culture",
                starts_at=THURSDAY_10 + timedelta(hours=4),
            )

            # Browse near me, then details by number; the menu has the two new entries.
            await cai.say("菜单")
            assert cai.labels[5:] == ["志愿活动", "我的积分", "帮助"] and len(cai.labels) == 8
            await cai.press("志愿活动")
            assert "敬老院陪伴" in cai.text and "社区读书会" in cai.text
            assert "还剩 1 个名额" in cai.text
            await cai.say("1")  # the soonest first
            assert "陪老人聊天" in cai.text and "夕阳红" in cai.text
            await cai.press("我要报名")
            assert "报名成功" in cai.text and "签到" in cai.text
            assert await notices_to(app, "cai") == []  # answered in the chat, not twice

            # Full: the next one waits; pressing again says where they stand.
            await ana.say("活动")
            await ana.press("敬老院陪伴")
            assert "名额已满" in ana.text
            await ana.press("我要报名")
            assert "候补第 1 位" in ana.text
            await ana.button(f"as.{visit}")
            assert "您已经在候补名单里了（第 1 位）" in ana.text
            await ana.button(f"as.{reading}")
            assert "报名成功" in ana.text

            # The other lists: this week, by category (numbered).
            await ana.say("活动")
            await ana.press("本周活动")
            assert "敬老院陪伴" in ana.text and "社区读书会" in ana.text
            await ana.press("按类别找")
            assert ana.labels[:2] == ["养老助老", "文体活动"]
            await ana.say("2")
            assert "社区读书会" in ana.text and "敬老院陪伴" not in ana.text

            # cai cancels from 我的活动 (numbered): ana moves up and is told.
            await cai.say("我的活动")
            assert "敬老院陪伴" in cai.text and "已报名" in cai.text
            await cai.say("1")
            assert "确定要取消报名「敬老院陪伴」" in cai.text
            await cai.press("确认取消报名")
            assert "已取消报名" in cai.text
            assert any("好消息" in n and "敬老院陪伴" in n for n in await notices_to(app, "ana"))
            await ana.button(f"ac.{visit}")
            assert "您已报名" in ana.text and "取消报名" in ana.labels

            # Thursday: two activities today; the code says which one.
            clock.set(THURSDAY_10)
            await ana.say("签到")
            assert "请输入活动现场的6位签到码" in ana.text
            right = await code_now(app, visit)
            wrong = "000000" if right != "000000" else "111111"
            await ana.say(wrong)
            assert "签到码不对" in ana.text
            await ana.say(await code_now(app, reading))  # the afternoon's: found, not open yet
            assert "签到还没开始" in ana.text
            await ana.say("签到")
            await ana.say(f"签到码 {right}")
            assert "签到成功" in ana.text and "敬老院陪伴" in ana.text
            await ana.say("签到")
            await ana.say(right)
            assert "您已经签到过了" in ana.text

            clock.set(THURSDAY_10 + timedelta(hours=2))
            await ana.say("签退")
            await ana.say(await code_now(app, visit))
            assert "签退成功" in ana.text and "2 小时" in ana.text
            await cai.say("签到")
            assert "不需要签到" in cai.text

            elderly = await org_id(app, ELDERLY_ORG)
            async with transaction(app.state.runtime.factory) as session:
                done = await finish_activity(
                    session, activity_id=visit, org_id=elderly, actor=Actor("org", str(elderly))
                )
            assert done.attended == 1 and done.points == 600
            await ana.say("积分")
            assert "您现在有 600 积分" in ana.text and "+600" in ana.text
            assert "敬老院陪伴" in ana.text

            await _redeem(app, ana)
            await _family(app, ana, bo)
            await _certificates(app, ana, elderly)


async def _redeem(app, ana: Resident) -> None:
    async with transaction(app.state.runtime.factory) as session:
        await create_reward(session, title="大米一袋", price=100, stock=5, actor="staff:1")
        cooker = await create_reward(session, title="电饭煲", price=1000, stock=2, actor="staff:1")
    await ana.say("兑换")
    assert "大米一袋" in ana.text and "电饭煲" in ana.text
    before = await ledger_state(app)
    await ana.say("2")  # 电饭煲: more than she has
    assert "积分不够。需要 1000 分，您现在有 600 分。" in ana.text
    await ana.button(f"py.{cooker.id}.feed1234")  # an old confirm button: the domain says no
    assert "积分不够" in ana.text
    assert await ledger_state(app) == before

    await ana.say("兑换")
    await ana.say("1")
    assert "兑换后还剩 500 分" in ana.text
    confirm = ana.replies[-1]["buttons"][0]["payload"]
    await ana.press("确认兑换")
    code = re.search(r"领取码：(\w+)", ana.text)
    assert code is not None
    await ana.button(confirm)  # pressed twice: one redemption, the same code
    assert f"领取码：{code.group(1)}" in ana.text
    await ana.say("我的兑换")
    assert code.group(1) in ana.text and "待领取" in ana.text
    async with app.state.runtime.factory() as session:
        assert await user_balance(session, await user_id(app, "ana")) == 500


async def _family(app, ana: Resident, bo: Resident) -> None:
    me, relative = await user_id(app, "ana"), await user_id(app, "bo")
    await ana.say("转赠")
    assert "还没有绑定家人" in ana.text and "转赠积分" not in ana.labels
    await ana.press("生成家人码")
    own = re.search(r"家人码：(\w{6})", ana.text)
    await ana.say("转赠")
    await ana.press("输入家人码")
    await ana.say(own.group(1) if own else "")
    assert "不能绑定自己" in ana.text

    await bo.say("家人码")
    await bo.press("生成家人码")
    found = re.search(r"家人码：(\w{6})", bo.text)
    assert found is not None
    await ana.say("转赠")
    await ana.press("输入家人码")
    await ana.say("ZZZZZZ")
    assert "家人码不对" in ana.text
    await ana.say(found.group(1).lower())  # case forgiven
    assert "绑定成功" in ana.text

    await ana.press("转赠积分")
    assert ana.labels[0] == "王阿姨"
    await ana.say("1")
    assert "要转给王阿姨多少积分" in ana.text and "500" in ana.text
    await ana.say("好多")
    assert "请输入大于 0 的整数" in ana.text
    await ana.say("150分")
    assert "确认转给王阿姨 150 积分吗" in ana.text
    await ana.press("确认转赠")
    assert "已转给王阿姨 150 积分" in ana.text and "您还有 350 分" in ana.text
    assert any("转赠给您 150 积分" in n for n in await notices_to(app, "bo"))

    before = await ledger_state(app)
    await ana.button(f"pt.{relative}")
    await ana.say("100")  # 150 + 100 > 200 a day
    await ana.press("确认转赠")
    assert "每天最多转赠 200 分，今天还能转 50 分。" in ana.text
    await ana.button(f"pc.{me}.10.cafe0001")
    assert "不能转赠给自己" in ana.text
    assert await ledger_state(app) == before
    async with app.state.runtime.factory() as session:
        assert await user_balance(session, me) == 350
        assert await user_balance(session, relative) == 150


async def _certificates(app, ana: Resident, elderly: int) -> None:
    await ana.say("志愿服务证明")
    assert "还没有志愿服务证明" in ana.text
    me = await user_id(app, "ana")
    async with transaction(app.state.runtime.factory) as session:
        cert = await issue_certificate(
            session,
            user_id=me,
            issuer_org_id=elderly,
            actor=Actor("org", str(elderly)),
        )
    await ana.say("证明")
    assert cert.number in ana.text and "2 小时" in ana.text and "打印" in ana.text
