"""PushClient against a fake bridge that verifies signatures with the standardwebhooks library."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tests.support.fake_push import FakePush
from webhooks.generic.client import (
    MAX_RETRY_AFTER_S,
    PushClient,
    PushResult,
    backoff_seconds,
    classify_status,
    parse_retry_after,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PAYLOAD = {
    "user_id": "u1",
    "text": "您的报修已受理：3 号楼楼道灯",
    "buttons": [{"text": "查看进度", "payload": "req:17"}],
}


@pytest.fixture
async def bridge() -> AsyncIterator[FakePush]:
    async with FakePush(SECRET) as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[PushClient]:
    async with PushClient() as push_client:
        yield push_client


async def test_ok_push_is_signed_and_utf8(bridge: FakePush, client: PushClient) -> None:
    result = await client.push(bridge.url, SECRET, PAYLOAD, "msg_ok1")
    assert result == PushResult(ok=True, status=200)
    assert not result.should_retry
    [got] = bridge.received
    assert got.msg_id == "msg_ok1"
    assert got.json == PAYLOAD
    assert "您的报修".encode() in got.body  # ensure_ascii=False: raw UTF-8 on the wire
    assert got.headers["content-type"].startswith("application/json")
    assert not bridge.rejected


async def test_wrong_secret_is_rejected_by_bridge(bridge: FakePush, client: PushClient) -> None:
    other = "whsec_" + "A" * 43 + "="
    result = await client.push(bridge.url, other, PAYLOAD, "msg_bad")
    assert result.permanent and result.status == 401
    assert len(bridge.rejected) == 1 and not bridge.received


async def test_410_means_gone(bridge: FakePush, client: PushClient) -> None:
    bridge.respond_with(410)
    result = await client.push(bridge.url, SECRET, PAYLOAD, "msg_gone")
    assert result.gone and not result.ok and not result.should_retry and result.status == 410


async def test_500_then_200_retry_reuses_msg_id(bridge: FakePush, client: PushClient) -> None:
    bridge.respond_with([500, 200])
    first = await client.push(bridge.url, SECRET, PAYLOAD, "msg_retry")
    assert first.should_retry and first.status == 500 and first.retry_after_s is None
    second = await client.push(bridge.url, SECRET, PAYLOAD, "msg_retry")
    assert second.ok
    assert [r.msg_id for r in bridge.received] == ["msg_retry", "msg_retry"]
    assert [r.status for r in bridge.received] == [500, 200]


async def test_429_retry_after_seconds(bridge: FakePush, client: PushClient) -> None:
    bridge.respond_with((429, {"Retry-After": "7"}))
    result = await client.push(bridge.url, SECRET, PAYLOAD, "msg_429")
    assert result.should_retry and result.status == 429 and result.retry_after_s == 7.0


async def test_503_retry_after_http_date(bridge: FakePush, client: PushClient) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    bridge.respond_with((503, {"Retry-After": format_datetime(when, usegmt=True)}))
    result = await client.push(bridge.url, SECRET, PAYLOAD, "msg_503")
    assert result.should_retry and result.retry_after_s is not None
    assert 100 < result.retry_after_s <= 120


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
async def test_other_4xx_are_permanent(bridge: FakePush, client: PushClient, status: int) -> None:
    bridge.respond_with(status)
    result = await client.push(bridge.url, SECRET, PAYLOAD, f"msg_{status}")
    assert result.permanent and not result.should_retry and result.status == status


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    result = classify_status(status)
    assert result.should_retry and result.status == status and result.error == f"HTTP {status}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_transient(client: PushClient) -> None:
    result = await client.push(f"http://127.0.0.1:{_free_port()}/push", SECRET, PAYLOAD, "m1")
    assert result.should_retry and result.status is None and result.error == "ConnectError"


async def test_timeout_is_transient() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow bridge", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http:
        result = await PushClient(http).push("http://bridge.test/push", SECRET, PAYLOAD, "m1")
    assert result.should_retry and result.error == "ReadTimeout"


async def test_bad_url_is_permanent(client: PushClient) -> None:
    result = await client.push("ftp://bridge.test/push", SECRET, PAYLOAD, "m1")
    assert result.permanent and result.status is None


async def test_shared_client_is_not_closed() -> None:
    async with httpx.AsyncClient() as http:
        async with PushClient(http):
            pass
        assert not http.is_closed


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None  # not delta-seconds, not a date
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("99999999") == MAX_RETRY_AFTER_S
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0
    assert classify_status(500, "7").retry_after_s is None  # only 429/503 carry it


def test_backoff_grows_with_jitter_and_caps() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (8, 640)]:
        delays = {backoff_seconds(attempt, rng=rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert all(1800 <= backoff_seconds(n) <= 3600 for n in (11, 12, 100, 10**9))
    assert 2.5 <= backoff_seconds(0) <= 5
