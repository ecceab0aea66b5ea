"""The active-send clients against the fake platform: token cache and refresh under
concurrency, the one retry on an invalid/expired token, and errcode → SendResult."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from community.outbox import SendResult
from storage.models import OutboxMessage
from tests.support.fake_wecom import FakeWeixin
from webhooks.wechat.client import WechatClient
from webhooks.wecom.client import WecomClient


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    fake: FakeWeixin
    wecom: WecomClient
    wechat: WechatClient
    clock: Clock


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    clock = Clock()
    async with FakeWeixin(clock=clock) as fake, httpx.AsyncClient() as http:
        wecom = WecomClient(
            http,
            corp_id=fake.corp_id,
            agent_id=fake.agent_id,
            secret=fake.corp_secret,
            api_url=fake.base_url,
            clock=clock,
        )
        wechat = WechatClient(
            http, app_id=fake.app_id, app_secret=fake.app_secret, api_url=fake.base_url, clock=clock
        )
        yield Setup(fake, wecom, wechat, clock)


async def test_token_is_cached_and_refreshed_before_expiry(setup: Setup) -> None:
    for _ in range(3):
        assert (await setup.wecom.send_text("u1", "你好")).ok
    assert setup.fake.token_calls["wecom"] == 1
    setup.clock.now += 7200 - 300 - 1  # still inside the safety margin: same token
    assert (await setup.wecom.send_text("u1", "还在")).ok
    assert setup.fake.token_calls["wecom"] == 1
    setup.clock.now += 2  # within 5 minutes of the expiry: refreshed before it is refused
    assert (await setup.wecom.send_text("u1", "新的")).ok
    assert setup.fake.token_calls["wecom"] == 2
    assert all(code == 0 for _, code in setup.fake.calls)  # never a 42001 on the wire


async def test_expired_token_is_refreshed_once_and_retried(setup: Setup) -> None:
    assert (await setup.wecom.send_text("u1", "一")).ok
    setup.fake.expire_tokens()  # the platform ended it early
    assert (await setup.wecom.send_text("u1", "二")).ok
    assert [c for _, c in setup.fake.calls] == [0, 42001, 0]
    assert setup.fake.token_calls["wecom"] == 2 and setup.fake.messages("u1") == ["一", "二"]


async def test_token_refused_twice_is_not_retried_again(setup: Setup) -> None:
    setup.fake.fail_next(40014, times=2)
    result = await setup.wecom.send_text("u1", "一")
    assert not result.ok and not result.permanent and not result.gone
    assert setup.fake.token_calls["wecom"] == 2 and len(setup.fake.calls) == 2


async def test_twenty_concurrent_sends_fetch_one_token(setup: Setup) -> None:
    results = await asyncio.gather(*(setup.wecom.send_text(f"u{i}", "通知") for i in range(20)))
    assert all(r.ok for r in results) and len(setup.fake.sent) == 20
    assert setup.fake.token_calls["wecom"] == 1


async def test_twenty_concurrent_sends_after_expiry_refresh_once(setup: Setup) -> None:
    assert (await setup.wecom.send_text("u0", "热身")).ok
    setup.fake.expire_tokens()
    results = await asyncio.gather(*(setup.wecom.send_text(f"u{i}", "通知") for i in range(20)))
    assert all(r.ok for r in results) and len(setup.fake.sent) == 21
    assert setup.fake.token_calls["wecom"] == 2  # one refresh for twenty 42001 answers


async def test_bad_secret_does_not_hammer_gettoken(setup: Setup) -> None:
    setup.wecom._secret = "wrong"
    results = await asyncio.gather(*(setup.wecom.send_text(f"u{i}", "x") for i in range(20)))
    assert all(not r.ok and not r.permanent for r in results)
    assert results[0].error is not None and "token 40001" in results[0].error
    assert setup.fake.token_calls["wecom"] == 1 and setup.fake.sent == []


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        (45009, SendResult(ok=False, retry_after_s=60.0)),
        (45033, SendResult(ok=False, retry_after_s=5.0)),
        (81013, SendResult(ok=False, gone=True)),
        (60111, SendResult(ok=False, gone=True)),
        (-1, SendResult(ok=False)),
        (44004, SendResult(ok=False, permanent=True)),
        (48002, SendResult(ok=False, permanent=True)),
    ],
)
async def test_wecom_errors_map_to_outcomes(setup: Setup, errcode: int, expected) -> None:  # type: ignore[no-untyped-def]
    setup.fake.fail_next(errcode)
    result = await setup.wecom.send_text("u1", "x")
    assert (result.ok, result.gone, result.permanent, result.retry_after_s) == (
        expected.ok,
        expected.gone,
        expected.permanent,
        expected.retry_after_s,
    )
    assert result.error is not None and str(errcode) in result.error


async def test_wecom_invalid_user(setup: Setup) -> None:
    setup.fake.invalid_users.add("left-the-company")
    result = await setup.wecom.send_text("left-the-company", "x")
    assert result.gone and not result.ok
    # A partial failure (errcode 0) that names our recipient is just as final.
    assert setup.wecom.result({"errcode": 0, "invaliduser": "a|b"}, "b").gone
    assert setup.wecom.result({"errcode": 0, "invaliduser": ""}, "b").ok


async def test_wechat_token_replaced_elsewhere_is_refetched(setup: Setup) -> None:
    """On WeChat a new token invalidates the old one (another process, the console…)."""
    assert (await setup.wechat.send_text("o1", "一")).ok
    async with httpx.AsyncClient() as other:
        params = {
            "grant_type": "client_credential",
            "appid": "wx_test_app",
            "secret": "wechat-secret",
        }
        await other.get(f"{setup.fake.base_url}/cgi-bin/token", params=params)
    assert (await setup.wechat.send_text("o1", "二")).ok
    assert [c for _, c in setup.fake.calls] == [0, 40001, 0]
    assert setup.fake.messages("o1") == ["一", "二"]


@pytest.mark.parametrize(
    ("errcode", "gone", "permanent", "retry_after"),
    [
        (43004, True, False, None),  # unfollowed
        (40003, True, False, None),
        (45015, False, True, None),  # outside the 48-hour window
        (45047, False, False, None),  # per-resident quota: back off
        (45011, False, False, 10.0),
        (48001, False, True, None),  # the account lacks the API
    ],
)
async def test_wechat_errors_map_to_outcomes(
    setup: Setup, errcode: int, gone: bool, permanent: bool, retry_after: float | None
) -> None:
    setup.fake.fail_next(errcode)
    result = await setup.wechat.send_text("o1", "x")
    assert (result.ok, result.gone, result.permanent, result.retry_after_s) == (
        False,
        gone,
        permanent,
        retry_after,
    )


async def test_transport_failures_are_transient() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 7200})
        return httpx.Response(502, text="bad gateway")

    async with httpx.AsyncClient(transport=httpx.MockTransport(broken)) as http:
        client = WecomClient(http, corp_id="c", agent_id=1, secret="s", api_url="http://x")
        result = await client.send_text("u1", "x")
        assert not result.ok and not result.permanent and "http 502" in (result.error or "")
    async with httpx.AsyncClient() as http:
        client = WecomClient(
            http, corp_id="c", agent_id=1, secret="s", api_url="http://127.0.0.1:9"
        )
        result = await client.send_text("u1", "x")
        assert not result.ok and not result.permanent


async def test_outbox_row_is_numbered_and_split(setup: Setup) -> None:
    buttons = [{"text": "确认", "payload": "cf.1"}, {"text": "取消", "payload": "x"}]
    row = OutboxMessage(channel="wecom", target="u9", text="长" * 1500, buttons=buttons)
    assert (await setup.wecom.send(row)).ok
    parts = setup.fake.messages("u9")
    assert len(parts) == 3 and all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts).count("长") == 1500
    assert parts[-1].endswith("回复 1：确认\n回复 2：取消")
    row = OutboxMessage(channel="wechat", target="o9", text="已办结，请评价", buttons=buttons[:1])
    assert (await setup.wechat.send(row)).ok
    assert setup.fake.messages("o9") == ["已办结，请评价\n\n回复 1：确认"]
