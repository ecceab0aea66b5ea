"""Hostile and broken DingTalk callbacks: each is refused with its status before anything is
stored or sent, and the channel keeps working afterwards."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.fake_dingtalk import dingtalk_headers
from tests.webhooks.dingtalk.dingtalk_support import APP_SECRET, Member, dingtalk_world, fixture
from tests.webhooks.wecom.wecom_support import counts

HOUR_MS = 3_600_000


def hostile_cases() -> list[tuple[str, bytes, dict[str, str], int]]:
    body = json.dumps(fixture("text_message.json", senderStaffId="mallory"), ensure_ascii=False)
    raw = body.encode()
    now = int(time.time() * 1000)
    good = dingtalk_headers(APP_SECRET, now)
    sign = good["sign"]
    flipped = sign[:5] + ("A" if sign[5] != "A" else "B") + sign[6:]
    return [
        ("signature off by one character", raw, good | {"sign": flipped}, 403),
        ("signed with another secret", raw, dingtalk_headers("another-secret", now), 403),
        ("no headers at all", raw, {"content-type": "application/json"}, 403),
        ("timestamp without sign", raw, {"timestamp": good["timestamp"]}, 403),
        ("sign of another timestamp", raw, good | {"timestamp": str(now - 1)}, 403),
        ("stale: 1 h and 1 s old", raw, dingtalk_headers(APP_SECRET, now - HOUR_MS - 1000), 403),
        ("from the future", raw, dingtalk_headers(APP_SECRET, now + HOUR_MS + 1000), 403),
        ("timestamp in seconds", raw, dingtalk_headers(APP_SECRET, now // 1000), 403),
        ("timestamp not digits", raw, good | {"timestamp": "+" + good["timestamp"]}, 403),
        ("sign not base64", raw, good | {"sign": "%%%not*base64%%%"}, 403),
        ("malformed JSON", raw[:-5], good, 400),
        ("a JSON array", b"[1, 2, 3]", good, 400),
        (
            "no sender",
            json.dumps({"msgtype": "text", "text": {"content": "hi"}}).encode(),
            good,
            400,
        ),
        ("not UTF-8", "你好".encode("gbk"), good, 400),
        ("empty body", b"", good, 400),
        ("over 64 KiB", b"{" + b" " * (64 * 1024) + b"}", good, 413),
    ]


async def test_hostile_callbacks_store_nothing(database_url: str, tmp_path: Path) -> None:
    async with dingtalk_world(database_url, tmp_path) as world:
        for name, body, headers, status in hostile_cases():
            response = await world.platform.post_raw(body, headers)
            assert response.status_code == status, (name, response.status_code, response.text)
        await world.deliver()
        assert await counts(world.app) == (0, 0, 0)
        assert world.fake.sent == [] and world.fake.token_calls == 0
        # The channel still works after all that.
        texts = await Member(world, "zhangayi01").say("你好")
        assert "同意" in texts[0]


async def test_replay_within_the_hour_acts_once(sqlite_url: str, tmp_path: Path) -> None:
    """The signature covers only the timestamp: a captured callback replayed with the same
    headers passes the check, and the msgId dedupe makes it a no-op."""
    async with dingtalk_world(sqlite_url, tmp_path) as world:
        member = Member(world, "zhangayi01")
        body = json.dumps(member.payload(), ensure_ascii=False).encode()
        headers = dingtalk_headers(APP_SECRET)
        for _ in range(3):
            response = await world.platform.post_raw(body, headers)
            assert (response.status_code, response.json()) == (200, {})
        assert len(await member.received()) == 1
        inbox, _, outbox = await counts(world.app)
        assert (inbox, outbox) == (1, 1)
