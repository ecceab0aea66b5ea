"""Organizations' group robots through the real outbox: a routed request arrives signed, with
a link to the dashboard; the 21st message within a minute waits in the outbox (never lost,
never sent early); a platform's own "too many" pauses that robot; a bad key fails for good."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.e2e.harness import set_org_notify
from tests.webhooks.robots.robot_support import ORG, PUBLIC_URL, robot_world

DING_TOKEN = "5b7c0e1f2a3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b"
DING_SECRET = "SEC8c3f0e1d2b4a69788f7e6d5c4b3a29180f7e6d5c4b3a2918"
WECOM_KEY = "693a91f6-7b3c-4bc4-97a0-0ec2a1f3d5e7"
FEISHU_HOOK = "2f0e6b3a-8c1d-4e5f-9a7b-6c5d4e3f2a1b"
FEISHU_SECRET = "mLk2Zp9QbX4tRv7WcY1sAe"


async def test_dingtalk_robot_21st_message_waits(database_url: str, tmp_path: Path) -> None:
    async with robot_world(database_url, tmp_path) as world:
        world.dingtalk.add_robot(DING_TOKEN, DING_SECRET)
        await set_org_notify(world.app, ORG, f"dingtalk-robot:{DING_TOKEN}:{DING_SECRET}")
        ids = await world.route_requests(21)
        await world.deliver()

        sent = world.dingtalk.messages(DING_TOKEN, via="robot")
        assert len(sent) == 20  # signed (the fake checks), never refused:
        assert world.dingtalk.answered("/robot/send") == {0: 20}
        first = sent[0]
        assert first.startswith("【新诉求】") and "楼道里的灯坏了，第1栋" in first
        assert first.endswith(
            f"请到网页工作台处理（接单、退回）：{PUBLIC_URL}/staff/requests/{ids[0]}"
        )
        rows = await world.rows("dingtalk-robot")
        waiting = [r for r in rows if r.status == "pending"]
        assert len(waiting) == 1 and waiting[0].attempts == 0  # held back, not a failure
        delay = waiting[0].next_attempt_at - world.clocks.frozen()
        assert timedelta(seconds=59) < delay <= timedelta(seconds=61)

        world.advance(30)
        await world.deliver()
        assert len(world.dingtalk.messages(DING_TOKEN)) == 20  # not early
        world.advance(31)
        await world.deliver()
        assert len(world.dingtalk.messages(DING_TOKEN)) == 21
        assert {r.status for r in await world.rows("dingtalk-robot")} == {"sent"}
        assert world.dingtalk.answered("/robot/send") == {0: 21}


async def test_dingtalk_robot_blocked_by_the_platform(sqlite_url: str, tmp_path: Path) -> None:
    """Someone else used up the minute: 660026 mutes the robot for 10 minutes. The row waits
    that long, the robot's other notices too, and nothing is sent in a loop meanwhile."""
    async with robot_world(sqlite_url, tmp_path) as world:
        world.dingtalk.add_robot(DING_TOKEN, DING_SECRET)
        await set_org_notify(world.app, ORG, f"dingtalk-robot:{DING_TOKEN}#{DING_SECRET}")
        world.dingtalk._robot_sends[DING_TOKEN] = [world.clocks.wall] * 20
        await world.route_requests(2)
        for _ in range(3):
            await world.deliver()
        assert world.dingtalk.answered("/robot/send") == {660026: 1}
        rows = await world.rows("dingtalk-robot")
        assert [r.status for r in rows] == ["pending", "pending"]
        assert "660026" in (rows[0].last_error or "") and rows[0].attempts == 1
        for row in rows:
            delay = row.next_attempt_at - world.clocks.frozen()
            assert timedelta(seconds=590) < delay <= timedelta(seconds=601)
        world.advance(601)
        await world.deliver()
        assert world.dingtalk.answered("/robot/send") == {660026: 1, 0: 2}


async def test_wecom_robot(database_url: str, tmp_path: Path) -> None:
    async with robot_world(database_url, tmp_path) as world:
        world.wecom.keys.add(WECOM_KEY)
        await set_org_notify(world.app, ORG, f"wecom-robot:{WECOM_KEY}")
        ids = await world.route_requests(21)
        await world.deliver()
        assert len(world.wecom.sent) == 20 and set(world.wecom.calls) == {0}
        assert f"{PUBLIC_URL}/staff/requests/{ids[0]}" in world.wecom.sent[0].content
        world.advance(61)
        await world.deliver()
        assert len(world.wecom.sent) == 21 and set(world.wecom.calls) == {0}

        world.wecom.saturate(WECOM_KEY)  # 45009: the next one waits a minute
        await world.route_requests(1)
        await world.deliver()
        [row] = [r for r in await world.rows("wecom-robot") if r.status == "pending"]
        assert "45009" in (row.last_error or "")
        world.advance(61)
        await world.deliver()
        assert len(world.wecom.sent) == 22 and world.wecom.calls.count(45009) == 1


async def test_feishu_robot(database_url: str, tmp_path: Path) -> None:
    async with robot_world(database_url, tmp_path) as world:
        world.feishu.add_bot(FEISHU_HOOK, FEISHU_SECRET)
        await set_org_notify(world.app, ORG, f"feishu-robot:{FEISHU_HOOK}#{FEISHU_SECRET}")
        ids = await world.route_requests(6)
        await world.deliver()
        sent = [s for s in world.feishu.sent if s.via == "bot"]
        assert len(sent) == 5 and {c for _, c in world.feishu.calls} == {0}  # 5 per second
        post = sent[0].payload["content"]["post"]["zh_cn"]
        assert post["title"].startswith("【新诉求】")
        assert post["content"][-1][-1]["href"] == f"{PUBLIC_URL}/staff/requests/{ids[0]}"
        world.advance(2)
        await world.deliver()
        assert len([s for s in world.feishu.sent if s.via == "bot"]) == 6

        world.feishu._bot_sends[FEISHU_HOOK] = [world.clocks.wall] * 100  # 9499 too many
        await world.route_requests(1)
        await world.deliver()
        [row] = [r for r in await world.rows("feishu-robot") if r.status == "pending"]
        assert "9499" in (row.last_error or "") and row.attempts == 1
        world.advance(61)
        await world.deliver()
        assert len([s for s in world.feishu.sent if s.via == "bot"]) == 7


async def test_bad_keys_fail_for_good(sqlite_url: str, tmp_path: Path) -> None:
    """An unknown key, a wrong secret or an unusable address: failed at once, not retried."""
    cases = [
        ("wecom-robot:0000-unknown-key", "wecom-robot", "93000"),
        (f"dingtalk-robot:{DING_TOKEN}:SECwrong", "dingtalk-robot", "310000"),
        (f"feishu-robot:{FEISHU_HOOK}#wrong-secret", "feishu-robot", "19021"),
        ("dingtalk-robot:not a token", "dingtalk-robot", "bad key"),
    ]
    async with robot_world(sqlite_url, tmp_path) as world:
        world.dingtalk.add_robot(DING_TOKEN, DING_SECRET)
        world.feishu.add_bot(FEISHU_HOOK, FEISHU_SECRET)
        for notify, channel, error in cases:
            await set_org_notify(world.app, ORG, notify)
            await world.route_requests(1)
            await world.deliver()
            world.advance(3600)
            await world.deliver()
            [row] = [r for r in await world.rows(channel) if error in (r.last_error or "")]
            assert (row.status, row.attempts) == ("failed", 1), notify
            assert notify.split(":", 1)[1] not in (row.last_error or "")  # no secret in it
        assert world.wecom.sent == [] and world.dingtalk.sent == [] and world.feishu.sent == []
