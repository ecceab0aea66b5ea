"""The Feishu message client against the fake platform: one tenant token for concurrent sends,
refreshed before expiry and once when refused; Feishu's codes → SendResult; uuid per row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from storage.models import OutboxMessage
from tests.support.fake_feishu import FakeFeishu
from webhooks.feishu.client import FeishuClient


@dataclass
class Clock:
    now: float = 1_714_037_059.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    fake: FakeFeishu
    client: FeishuClient
    clock: Clock


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    clock = Clock()
    async with FakeFeishu(clock=clock) as fake, httpx.AsyncClient() as http:
        client = FeishuClient(
            http, app_id=fake.app_id, app_secret=fake.app_secret, api_url=fake.base_url, clock=clock
        )
        yield Setup(fake, client, clock)


def _row(text: str, msg_id: str = "msg_abc") -> OutboxMessage:
    return OutboxMessage(channel="feishu", target="ou_1", text=text, buttons=[], msg_id=msg_id)


async def test_one_token_for_concurrent_sends_and_refresh_before_expiry(setup: Setup) -> None:
    results = await asyncio.gather(*(setup.client.send_text("ou_1", f"{i}") for i in range(20)))
    assert all(r.ok for r in results) and setup.fake.token_calls == 1
    setup.clock.now += 7200 - 300 - 1  # inside the safety margin: same token
    assert (await setup.client.send_text("ou_1", "还在")).ok
    assert setup.fake.token_calls == 1
    setup.clock.now += 2  # past it: refreshed before Feishu would refuse it
    assert (await setup.client.send_text("ou_1", "新的")).ok
    assert setup.fake.token_calls == 2
    assert {code for _, code in setup.fake.calls} == {0}


async def test_refused_token_is_refreshed_once(setup: Setup) -> None:
    assert (await setup.client.send_text("ou_1", "一")).ok
    setup.fake.expire_tokens()
    assert (await setup.client.send_text("ou_1", "二")).ok
    assert setup.fake.token_calls == 2 and setup.fake.messages("ou_1") == ["一", "二"]


async def test_codes_become_outbox_outcomes(setup: Setup) -> None:
    setup.fake.fail_next(99991400, status=429)
    limited = await setup.client.send_text("ou_1", "x")
    assert not limited.ok and limited.retry_after_s == 10.0 and not limited.permanent
    setup.fake.fail_next(230020)
    assert (await setup.client.send_text("ou_1", "x")).retry_after_s == 10.0
    setup.fake.fail_next(230001)
    assert (await setup.client.send_text("ou_1", "x")).permanent
    setup.fake.fail_next(1500, status=500)
    busy = await setup.client.send_text("ou_1", "x")
    assert not busy.ok and not busy.permanent and busy.retry_after_s is None
    setup.fake.unreachable.add("ou_gone")
    assert (await setup.client.send_text("ou_gone", "x")).gone
    assert setup.fake.sent == []


async def test_a_row_sent_again_reaches_the_user_once(setup: Setup) -> None:
    """Same outbox row twice (a crash before the outcome was recorded): uuid dedupes it."""
    for _ in range(2):
        assert (await setup.client.send(_row("你好", msg_id="msg_same"))).ok
    assert setup.fake.messages("ou_1") == ["你好"]
    assert (await setup.client.send(_row("你好", msg_id="msg_other"))).ok
    assert setup.fake.messages("ou_1") == ["你好", "你好"]


async def test_wrong_secret_is_not_a_stampede(setup: Setup) -> None:
    client = FeishuClient(
        setup.client.http, app_id="cli_test_app", app_secret="wrong", api_url=setup.fake.base_url
    )
    outcomes = [await client.send_text("ou_1", "x") for _ in range(3)]
    assert all(not o.ok and not o.permanent for o in outcomes)
    assert setup.fake.token_calls == 1  # the failure is remembered for a few seconds
