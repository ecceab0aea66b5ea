"""The DingTalk reply client against the fake platform: sessionWebhook while it is valid, the
robot API after, one cached token (refreshed once when refused), answers → SendResult."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from storage.models import OutboxMessage
from tests.support.fake_dingtalk import FakeDingtalk
from webhooks.dingtalk.client import SESSION_MARGIN_MS, DingtalkClient, SessionWebhooks


@dataclass
class Clock:
    now: float = 1_714_037_059.0

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


@dataclass
class Setup:
    fake: FakeDingtalk
    client: DingtalkClient
    clock: Clock


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    clock = Clock()
    async with FakeDingtalk(clock=clock) as fake, httpx.AsyncClient() as http:
        client = DingtalkClient(
            http,
            app_key=fake.app_key,
            app_secret=fake.app_secret,
            api_url=fake.base_url,
            oapi_url=fake.base_url,
            clock=clock,
            now_ms=clock.ms,
        )
        yield Setup(fake, client, clock)


def _row(target: str, text: str, buttons: list[dict[str, str]] | None = None) -> OutboxMessage:
    return OutboxMessage(
        channel="dingtalk", target=target, text=text, buttons=buttons or [], msg_id="m1"
    )


async def test_session_webhook_until_its_margin_then_the_api(setup: Setup) -> None:
    url, expires_ms = setup.fake.session_webhook("u1", ttl_s=600)
    assert setup.client.remember_session("u1", url, expires_ms)
    assert (await setup.client.send_text("u1", "一")).ok
    setup.clock.now += 600 - SESSION_MARGIN_MS / 1000 - 1  # just inside the margin
    assert (await setup.client.send_text("u1", "二")).ok
    setup.clock.now += 2  # less than a minute left: not started on this webhook any more
    assert (await setup.client.send_text("u1", "三")).ok
    assert [(s.via, s.content) for s in setup.fake.sent] == [
        ("session", "一"),
        ("session", "二"),
        ("api", "三"),
    ]


async def test_an_expired_session_is_forgotten(setup: Setup) -> None:
    url, expires_ms = setup.fake.session_webhook("u1")
    setup.client.remember_session("u1", url, expires_ms)
    setup.fake.expire_sessions()
    assert (await setup.client.send_text("u1", "一")).ok
    assert (await setup.client.send_text("u1", "二")).ok
    assert [s.via for s in setup.fake.sent] == ["api", "api"]
    assert setup.fake.answered("/robot/sendBySession") == {300001: 1}  # asked only once


async def test_token_cached_and_refreshed_once_when_refused(setup: Setup) -> None:
    for _ in range(3):
        assert (await setup.client.send_text("u1", "你好")).ok
    assert setup.fake.token_calls == 1
    setup.fake.expire_tokens()  # the platform no longer takes it (401): one refresh, one resend
    assert (await setup.client.send_text("u1", "还在")).ok
    assert setup.fake.token_calls == 2
    assert setup.fake.answered("/v1.0/robot/oToMessages/batchSend") == {
        0: 4,
        "InvalidAuthentication": 1,
    }


async def test_unknown_member_is_gone_and_bad_secret_is_retried_later(setup: Setup) -> None:
    setup.fake.known_staff = {"u1"}
    outcome = await setup.client.send_text("left-the-corp", "你好")
    assert outcome.gone and not outcome.ok
    setup.client._secret = "wrong"
    setup.client.tokens.invalidate(setup.client.tokens.current.value)  # type: ignore[union-attr]
    calls = setup.fake.token_calls
    first = await setup.client.send_text("u1", "你好")
    second = await setup.client.send_text("u1", "你好")
    assert not first.ok and not first.permanent and first.error == "token 400"
    assert not second.ok and setup.fake.token_calls == calls + 1  # no stampede on a bad secret


async def test_long_reply_is_split_with_the_options_last(setup: Setup) -> None:
    buttons = [{"text": "确认", "payload": "c.ok"}, {"text": "取消", "payload": "c.no"}]
    outcome = await setup.client.send(_row("u1", "很长的话。\n" * 800, buttons))
    assert outcome.ok
    parts = setup.fake.messages("u1")
    assert len(parts) == 4 and all(len(p.encode()) <= 4000 for p in parts)  # 12.8 kB
    assert parts[-1].endswith("回复 1：确认\n回复 2：取消")


def test_session_webhooks_are_bounded_and_keep_the_newest() -> None:
    hooks = SessionWebhooks(capacity=2)
    hooks.remember("a", "https://x/1", 10_000_000)
    hooks.remember("a", "https://x/0", 5_000_000)  # a late retry of an older callback
    assert hooks.usable("a", 0) == "https://x/1"
    hooks.remember("b", "https://x/2", 10_000_000)
    hooks.remember("c", "https://x/3", 10_000_000)
    assert hooks.usable("a", 0) is None and hooks.usable("c", 0) == "https://x/3"


async def test_only_webhooks_on_the_dingtalk_origin_are_kept() -> None:
    async with httpx.AsyncClient() as http:
        client = DingtalkClient(http, app_key="k", app_secret="s")
        good = "https://oapi.dingtalk.com/robot/sendBySession?session=abc"
        assert client.remember_session("u", good, 2_000_000_000_000)
        for url, expires in [
            ("https://oapi.dingtalk.com.evil.example/robot/sendBySession", 2_000_000_000_000),
            ("http://oapi.dingtalk.com/robot/sendBySession", 2_000_000_000_000),
            ("http://127.0.0.1:8080/", 2_000_000_000_000),
            (None, 2_000_000_000_000),
            (good, "2000000000000"),
        ]:
            assert not client.remember_session("v", url, expires)
        assert client.sessions.usable("v", 0) is None
