"""DingTalk: §7 ``dingtalk_sign`` vectors for the enterprise robot's inbound check and the custom
robot's outbound URL, the §9 negatives (signature, key, both sides of the 1-hour window),
hostile headers under hypothesis, and DingTalk's own documented Python sample as the
independent implementation (DingTalk publishes no Python SDK for this signature)."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.dingtalk.crypto import (
    TIMESTAMP_WINDOW_MS,
    sign,
    sign_url,
    signed_params,
    signed_query,
    verify_inbound,
)
from webhooks.errors import BadBase64, BadSignature, BadTimestamp, StaleTimestamp, WebhookError

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "spec" / "platforms.md"

SECRET = "test_app_secret"
TS = 1_700_000_000_000


def _load_vectors() -> dict[str, Any] | None:
    if not SPEC.is_file():
        return None
    match = re.search(r"```python\n(VECTORS = \{.*?\n\})\n```", SPEC.read_text("utf-8"), re.S)
    # The block is a JSON-compatible Python literal: parse it, never exec it.
    return ast.literal_eval(match.group(1).removeprefix("VECTORS = ")) if match else None


VECTORS = _load_vectors()
SIGNS: list[dict[str, str]] = VECTORS["dingtalk_sign"] if VECTORS else []


def _doc_sample(timestamp: str, secret: str) -> str:
    """DingTalk's documented Python sample (自定义机器人安全设置), verbatim in substance."""
    secret_enc = secret.encode("utf-8")
    string_to_sign_enc = f"{timestamp}\n{secret}".encode()
    hmac_code = hmac.new(secret_enc, string_to_sign_enc, digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(hmac_code))


def test_spec_vectors_present() -> None:
    if VECTORS is None:
        pytest.skip(f"spec with test vectors not found at {SPEC}")
    assert len(SIGNS) >= 2


# ---- spec vectors (platforms.md §7 dingtalk_sign) -----------------------------------------------
@pytest.mark.parametrize("case", SIGNS, ids=lambda c: c["source"][:60])
def test_sign_vectors(case: dict[str, str]) -> None:
    assert sign(case["timestamp_ms"], case["secret"]) == case["sign"]
    assert sign(int(case["timestamp_ms"]), case["secret"]) == case["sign"]
    assert urllib.parse.quote(case["sign"], safe="") == case["sign_urlencoded"]
    assert _doc_sample(case["timestamp_ms"], case["secret"]) == case["sign_urlencoded"]


@pytest.mark.parametrize("case", SIGNS, ids=lambda c: c["source"][:60])
def test_inbound_vectors_verify(case: dict[str, str]) -> None:
    now = int(case["timestamp_ms"])
    verify_inbound(case["timestamp_ms"], case["sign"], case["secret"], now_ms=now)


@pytest.mark.parametrize("case", SIGNS, ids=lambda c: c["source"][:60])
def test_outbound_vectors_query_and_url(case: dict[str, str]) -> None:
    now = int(case["timestamp_ms"])
    assert signed_params(case["secret"], now_ms=now) == {
        "timestamp": case["timestamp_ms"],
        "sign": case["sign"],
    }
    query = f"timestamp={case['timestamp_ms']}&sign={case['sign_urlencoded']}"
    assert signed_query(case["secret"], now_ms=now) == query
    base = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    url = sign_url(base, case["secret"], now_ms=now)
    assert url == f"{base}&{query}"
    # What DingTalk's server sees after decoding the query once: the original base64.
    parsed = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert parsed == {
        "access_token": "abc",
        "timestamp": case["timestamp_ms"],
        "sign": case["sign"],
    }


def test_sign_url_without_query() -> None:
    query = signed_query(SECRET, now_ms=TS)
    assert sign_url("https://x.test/send", SECRET, now_ms=TS) == f"https://x.test/send?{query}"
    assert sign_url("https://x.test/send?", SECRET, now_ms=TS) == f"https://x.test/send?{query}"


def test_default_clock_is_now() -> None:
    params = signed_params(SECRET)
    assert abs(int(params["timestamp"]) - time.time() * 1000) < 60_000
    verify_inbound(params["timestamp"], params["sign"], SECRET)


# ---- negatives (platforms.md §9) ----------------------------------------------------------------
def _reject(timestamp: Any, signature: Any, now: int = TS, secret: str = SECRET) -> WebhookError:
    with pytest.raises(WebhookError) as info:
        verify_inbound(timestamp, signature, secret, now_ms=now)
    return info.value


def test_signature_one_character_off_rejected() -> None:
    good = sign(TS, SECRET)
    # The first 42 characters carry only signature bits; the 43rd has 2 spare bits
    # (32 bytes = 256 bits in 43 × 6), so flipping it may decode to the same bytes.
    for i in (0, 10, 21, 41):
        flipped = good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1 :]
        assert isinstance(_reject(str(TS), flipped), BadSignature)


def test_wrong_secret_rejected() -> None:
    assert isinstance(_reject(str(TS), sign(TS, SECRET), secret=SECRET + "x"), BadSignature)


def test_feishu_style_signature_rejected() -> None:
    # Feishu swaps key and message; such a signature must not pass here.
    feishu = base64.b64encode(
        hmac.new(f"{TS}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert isinstance(_reject(str(TS), feishu), BadSignature)


def test_signature_of_other_timestamp_rejected() -> None:
    assert isinstance(_reject(str(TS), sign(TS + 1, SECRET)), BadSignature)


@pytest.mark.parametrize(
    ("skew", "reason"),
    [
        (TIMESTAMP_WINDOW_MS + 1, "timestamp_too_old"),
        (-TIMESTAMP_WINDOW_MS - 1, "timestamp_too_new"),
    ],
)
def test_outside_one_hour_rejected(skew: int, reason: str) -> None:
    # Validly signed, but now is more than an hour after (replay) or before (future) it.
    error = _reject(str(TS), sign(TS, SECRET), now=TS + skew)
    assert isinstance(error, StaleTimestamp) and error.reason == reason


@pytest.mark.parametrize("skew", [TIMESTAMP_WINDOW_MS, -TIMESTAMP_WINDOW_MS, 0])
def test_window_boundary_inclusive(skew: int) -> None:
    verify_inbound(str(TS), sign(TS, SECRET), SECRET, now_ms=TS + skew)


def test_stale_checked_before_signature() -> None:
    # A replay from yesterday is refused as stale whatever it carries.
    error = _reject(str(TS), "garbage", now=TS + 86_400_000)
    assert isinstance(error, StaleTimestamp)


@pytest.mark.parametrize(
    "timestamp",
    ["abc", "1700000000000.0", "-1700000000000", "+1700000000000", "1_700", "１７", " 1"],
)
def test_malformed_timestamp_rejected(timestamp: str) -> None:
    error = _reject(timestamp, sign(TS, SECRET))
    assert type(error) is BadTimestamp


@pytest.mark.parametrize("signature", ["!!!!", "签名", "abc", "YW Jj", "\ud800"])
def test_bad_base64_rejected(signature: str) -> None:
    assert isinstance(_reject(str(TS), signature), BadBase64)


@pytest.mark.parametrize(("timestamp", "signature"), [(None, "x"), ("", "x"), (str(TS), None)])
def test_missing_headers_rejected(timestamp: Any, signature: Any) -> None:
    error = _reject(timestamp, signature)
    assert isinstance(error, BadSignature) and error.reason == "missing_headers"


def test_empty_secret_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        verify_inbound(str(TS), sign(TS, SECRET), "", now_ms=TS)
    with pytest.raises(ValueError):
        sign(TS, "")


# ---- hypothesis ---------------------------------------------------------------------------------
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=80)


@given(timestamp=_ANY_TEXT, signature=_ANY_TEXT)
def test_hostile_headers_raise_only_our_errors(timestamp: str, signature: str) -> None:
    with pytest.raises(WebhookError):
        verify_inbound(timestamp, signature, SECRET, now_ms=TS)


@given(signature=_ANY_TEXT)
def test_hostile_signature_with_fresh_timestamp(signature: str) -> None:
    with pytest.raises(WebhookError):
        verify_inbound(str(TS), signature, SECRET, now_ms=TS)


@given(
    secret=st.text(min_size=1, max_size=64),
    timestamp=st.integers(min_value=0, max_value=10**13),
)
def test_ours_equals_doc_sample_and_verifies(secret: str, timestamp: int) -> None:
    assert urllib.parse.quote(sign(timestamp, secret), safe="") == _doc_sample(
        str(timestamp), secret
    )
    verify_inbound(str(timestamp), sign(timestamp, secret), secret, now_ms=timestamp)
