"""通知设置 through the generic channel, on both backends: the category list that ends
onboarding (toggles by number and by name, 完成 / 跳过), the settings summary, quiet hours
(presets, typed, refused), 退订 with confirmation and 恢复; and the empty screens a new
resident meets (nothing is a dead end)."""

from __future__ import annotations

from community.clock import use_clock
from community.interests import get_interests
from tests.dialogs.chat import START, Resident, user_id
from tests.e2e.harness import all_requests, client, make_settings, running_app
from tests.support.bridge import Bridge


async def _join(resident: Resident) -> None:
    await resident.say("你好")
    await resident.press("同意")
    await resident.press("梅园街道")
    await resident.press("桂花社区")


async def test_interests_from_onboarding_to_unsubscribe(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    with use_clock(START):
        async with running_app(settings) as app, client(app) as http:
            bridge = Bridge(http)
            dai = Resident(bridge, "dai")
            await _join(dai)
            assert "【桂花社区】" in dai.replies[0]["text"] and "哪些志愿活动的通知" in dai.text
            assert dai.labels[0] == "养老助老" and dai.labels[-2:] == ["完成", "跳过"]
            await dai.say("1")
            assert dai.labels[0] == "✓ 养老助老"
            await dai.say("文体活动")  # a category's name works as well as its number
            assert "✓ 文体活动" in dai.labels
            await dai.press("完成")
            assert "养老助老、文体活动" in dai.text and "志愿活动" in dai.labels
            factory = app.state.runtime.factory
            me = await user_id(app, "dai")
            async with factory() as session:
                mine = await get_interests(session, me)
            assert mine.categories == {"elderly", "culture"} and not mine.paused

            await dai.say("通知设置")
            assert "养老助老、文体活动" in dai.text and "【桂花社区】" in dai.text
            assert "21:00–08:00" in dai.text and "正在接收" in dai.text
            await dai.press("选择类别")
            assert dai.labels[0] == "✓ 养老助老" and "跳过" not in dai.labels
            await dai.say("1")
            assert dai.labels[0] == "养老助老"
            await dai.say("完成")
            assert "· 关注的活动类别：文体活动" in dai.text

            await dai.press("免打扰时间")
            await dai.say("2")
            assert "免打扰时间改为 22:00–07:00" in dai.text
            await dai.press("免打扰时间")
            await dai.say("23:00-6:30")
            assert "免打扰时间改为 23:00–06:30" in dai.text
            await dai.press("免打扰时间")
            await dai.say("25:00-7:00")
            assert "没看懂这个时间" in dai.text and "不设免打扰" in dai.labels
            await dai.say("不设")
            assert "不设免打扰" in dai.text and "免打扰：不设" in dai.text
            async with factory() as session:
                mine = await get_interests(session, me)
            assert mine.quiet_start == mine.quiet_end

            await dai.say("退订")
            assert "确定退订吗" in dai.text
            await dai.say("2")  # 取消: nothing changes
            async with factory() as session:
                assert not (await get_interests(session, me)).paused
            await dai.say("退订")
            await dai.say("1")
            assert "已退订" in dai.text
            async with factory() as session:
                assert (await get_interests(session, me)).paused
            await dai.say("恢复通知")
            assert "已恢复通知" in dai.text and "正在接收" in dai.text
            async with factory() as session:
                mine = await get_interests(session, me)
            assert not mine.paused and mine.categories == {"culture"}


async def test_new_resident_skips_and_finds_empty_screens(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path)
    with use_clock(START):
        async with running_app(settings) as app, client(app) as http:
            bridge = Bridge(http)
            eva, fu = Resident(bridge, "eva"), Resident(bridge, "fu")
            await _join(eva)
            await eva.press("跳过")
            assert "通知设置" in eva.text and eva.labels[-1] == "帮助"
            async with app.state.runtime.factory() as session:
                assert not (await get_interests(session, await user_id(app, "eva"))).categories

            # Typing one's business instead of choosing goes to intake as before.
            await _join(fu)
            await fu.say("楼道里的灯坏了好几天了")
            assert "对吗" in fu.text
            await fu.press("确认")
            assert len(await all_requests(app)) == 1

            for word, expected in (
                ("活动", "最近还没有志愿活动"),
                ("我的活动", "您还没有报名活动"),
                ("签到", "不需要签到"),
                ("积分", "还没有积分记录"),
                ("兑换", "暂时没有可以兑换的礼品"),
                ("我的兑换", "您还没有兑换过礼品"),
                ("证明", "还没有志愿服务证明"),
            ):
                await eva.say(word)
                assert expected in eva.text, word
                assert eva.labels, word  # always a way on
            await eva.say("帮助")
            assert "通知设置" in eva.text and "签到" in eva.text
            await eva.button("vc.nonsense")  # not ours: the engine's stale-button answer
            assert "过期" in eva.text
