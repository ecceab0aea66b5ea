"""Units under the channels: numbered rendering and splitting, the token cache, the query
parser and the callback parser (dedupe keys, which events mean something)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from community.notify import Button, Reply
from tests.webhooks.wecom.wecom_support import fixture
from webhooks.errors import BadXml
from webhooks.render import merge, numbered, render_parts, split_utf8
from webhooks.tokens import AccessTokenCache, TokenError
from webhooks.wecom.front import parse_message, parse_query


# ---- rendering ------------------------------------------------------------------------------
def test_merge_keeps_the_buttons_the_engine_remembers() -> None:
    replies = [
        Reply("谢谢您！"),
        Reply("旧问题", (Button("甲", "a"),)),
        Reply("请选择您所在的街道：", (Button("梅园街道", "st.1"), Button("湖滨街道", "st.2"))),
        Reply("  "),
    ]
    merged = merge(replies)
    assert merged is not None
    assert merged.text == "谢谢您！\n\n旧问题\n\n请选择您所在的街道："
    assert [b.payload for b in merged.buttons] == ["st.1", "st.2"]
    assert merge([]) is None and merge([Reply("")]) is None


def test_numbered_options() -> None:
    text = numbered("对吗？", [Button("确认", "cf"), {"text": "换一个\n类别", "payload": "cc"}])
    assert text == "对吗？\n\n回复 1：确认\n回复 2：换一个 类别"
    assert numbered("只有文字") == "只有文字"


@given(st.text(alphabet=st.sampled_from("邻里ab\n😀 "), max_size=3000), st.integers(4, 300))
def test_split_respects_bytes_and_keeps_every_character(text: str, limit: int) -> None:
    parts = split_utf8(text, limit)
    assert all(0 < len(p.encode()) <= limit for p in parts)
    # Cuts fall on line ends (the newline goes) or inside a line; no visible character is lost.
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_options_end_the_last_part() -> None:
    parts = render_parts("事" * 1000, [Button("确认", "cf")], limit=2048)
    assert len(parts) == 2 and parts[-1].endswith("回复 1：确认")


# ---- token cache ----------------------------------------------------------------------------
class SlowFetch:
    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.fail: TokenError | None = None

    async def __call__(self) -> tuple[str, float]:
        self.calls += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return f"tok{self.calls}", 7200.0


async def test_concurrent_gets_share_one_fetch() -> None:
    fetch = SlowFetch()
    cache = AccessTokenCache(fetch)
    waiting = [asyncio.create_task(cache.get()) for _ in range(20)]
    await asyncio.sleep(0)
    fetch.gate.set()
    assert set(await asyncio.gather(*waiting)) == {"tok1"} and fetch.calls == 1


async def test_invalidating_an_old_token_does_not_refetch() -> None:
    fetch = SlowFetch()
    fetch.gate.set()
    cache = AccessTokenCache(fetch)
    first = await cache.get()
    cache.invalidate(first)
    second = await cache.get()
    cache.invalidate(first)  # a late "expired" answer for the old token
    assert await cache.get() == second == "tok2" and fetch.calls == 2


async def test_failed_fetch_backs_off() -> None:
    now = [0.0]
    fetch = SlowFetch()
    fetch.gate.set()
    fetch.fail = TokenError(40001, "invalid credential")
    cache = AccessTokenCache(fetch, failure_backoff_s=5, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(TokenError):
            await cache.get()
    assert fetch.calls == 1
    now[0] = 6.0
    fetch.fail = None
    assert await cache.get() == "tok2" and fetch.calls == 2


async def test_empty_token_is_an_error() -> None:
    async def empty() -> tuple[str, float]:
        return "", 7200.0

    with pytest.raises(TokenError):
        await AccessTokenCache(empty).get()


# ---- query and callback parsing ---------------------------------------------------------------
def test_query_decoded_once_plus_kept() -> None:
    query = parse_query("echostr=a%2Bb+c%3D%3D&nonce=1&nonce=2&flag")
    assert query == {"echostr": "a+b+c==", "nonce": "1", "flag": ""}


def test_message_dedupe_keys() -> None:
    text = parse_message("wecom", fixture("text_message.xml", MsgId=123))
    assert text.key == "m:123" and text.event is not None and text.event.text == "你好"
    assert text.agent_id == "1000002" and text.user == "ZhangAYi"
    follow = parse_message("wecom", fixture("subscribe_event.xml"))
    assert follow.key == "e:ZhangAYi:1714036900:subscribe"
    assert follow.event is not None and follow.event.payload == "m.menu"


def test_events_without_meaning_are_not_acted_on() -> None:
    assert parse_message("wecom", fixture("enter_agent_event.xml")).key is None
    other_key = fixture("click_event.xml", EventKey="rt.1.5")  # only menu keys are buttons
    assert parse_message("wecom", other_key).key is None
    odd = fixture("text_message.xml").replace("[text]", "[miniprogram_notice]")
    assert parse_message("wecom", odd).key is None


def test_location_and_media() -> None:
    location = parse_message("wecom", fixture("location_message.xml"))
    assert location.location == "浙江省杭州市西湖区桂花社区3幢" and location.event is None
    voice = parse_message("wecom", fixture("voice_message.xml"))
    assert voice.event is not None and voice.event.media == "voice"


@pytest.mark.parametrize(
    "xml",
    [
        "<xml><MsgType>text</MsgType></xml>",
        "<xml><FromUserName>" + "u" * 129 + "</FromUserName></xml>",
        "<xml><FromUserName>u</FromUserName><MsgId>" + "9" * 65 + "</MsgId></xml>",
        "<notxml/>",
    ],
)
def test_malformed_messages_are_refused(xml: str) -> None:
    with pytest.raises(BadXml):
        parse_message("wecom", xml)
