"""Standard Webhooks signing/verification: spec vectors, §9 negatives, and a cross-check
against the independent ``standardwebhooks`` library in both directions."""

from __future__ import annotations

import ast
import base64
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.generic.crypto import (
    TELEGRAM_SECRET_RE,
    SignatureError,
    is_valid_telegram_secret,
    make_headers,
    parse_secret,
    sign,
    verify,
)

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "spec" / "platforms.md"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key, 32 bytes long......").decode()
BODY = '{"user": {"id": "u1", "name": "张阿姨"}, "message": {"text": "楼道灯坏了"}}'.encode()
NOW = 1_700_000_000


def _load_vectors() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"spec with test vectors not found at {SPEC}")
    match = re.search(r"```python\n(VECTORS = \{.*?\n\})\n```", SPEC.read_text("utf-8"), re.S)
    if match is None:
        pytest.skip(f"no fenced python block starting with 'VECTORS = ' in {SPEC}")
    # The block is a JSON-compatible Python literal: parse it, never exec it.
    return ast.literal_eval(match.group(1).removeprefix("VECTORS = "))


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return _load_vectors()


def _headers(msg_id: str, ts: int | str, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def _signed(now: int = NOW, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return make_headers(secret, body, msg_id="msg_test1", now=now)


# ---- spec vectors (platforms.md §7) -------------------------------------------------------------
def test_standard_webhooks_vectors(vectors: dict[str, Any]) -> None:
    cases = vectors["standard_webhooks"]
    assert cases, "no standard_webhooks vectors in the spec"
    for case in cases:
        body = case["body"].encode("utf-8")
        assert sign(case["secret"], case["msg_id"], case["timestamp"], body) == case["signature"]
        assert (
            sign(case["secret"], case["msg_id"], int(case["timestamp"]), body) == case["signature"]
        )
        headers = _headers(case["msg_id"], case["timestamp"], case["signature"])
        verify(case["secret"], headers, body, now=int(case["timestamp"]))


def test_telegram_secret_token_vectors(vectors: dict[str, Any]) -> None:
    case = vectors["telegram_secret_token"]
    assert case["pattern"] == TELEGRAM_SECRET_RE.pattern
    for token in case["valid"]:
        assert is_valid_telegram_secret(token), token
    for token in case["invalid"]:
        assert not is_valid_telegram_secret(token), token


@pytest.mark.parametrize("token", ["abc\n", "abc\r\n", "a" * 257, "x/y", "ａｂｃ"])
def test_telegram_secret_rejects_edge_cases(token: str) -> None:
    assert not is_valid_telegram_secret(token)


# ---- round trip and header handling -------------------------------------------------------------
def test_make_headers_round_trip_and_fresh_ids() -> None:
    headers = _signed()
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"].startswith("v1,")
    verify(SECRET, headers, BODY, now=NOW)
    first = make_headers(SECRET, BODY)["webhook-id"]
    second = make_headers(SECRET, BODY)["webhook-id"]
    assert first.startswith("msg_") and second.startswith("msg_") and first != second


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in _signed().items()}
    assert "Webhook-Id" in headers
    verify(SECRET, headers, BODY, now=NOW)


def test_tolerance_boundary_is_inclusive() -> None:
    verify(SECRET, _signed(), BODY, now=NOW + 300)
    verify(SECRET, _signed(), BODY, now=NOW - 300)


def test_multiple_entries_second_matches() -> None:
    headers = _signed()
    good = headers["webhook-signature"]
    bad = sign(OTHER_SECRET, "msg_test1", NOW, BODY)
    headers["webhook-signature"] = f"{bad} {good}"
    verify(SECRET, headers, BODY, now=NOW)


# ---- negatives (platforms.md §9) ----------------------------------------------------------------
def _reason(headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> str:
    with pytest.raises(SignatureError) as info:
        verify(SECRET, headers, body, now=now)
    return info.value.reason


def test_signature_one_char_off_rejected() -> None:
    headers = _signed()
    prefix, value = headers["webhook-signature"].split(",", 1)
    for i in (0, len(value) // 2, len(value) - 2):  # -1 is the "=" padding
        flipped = "B" if value[i] == "A" else "A"
        headers["webhook-signature"] = f"{prefix},{value[:i]}{flipped}{value[i + 1 :]}"
        assert _reason(headers) == "no_matching_signature"


def test_body_one_byte_off_rejected() -> None:
    assert _reason(_signed(), BODY[:-1] + b" ") == "no_matching_signature"
    assert _reason(_signed(), BODY + b"\n") == "no_matching_signature"


def test_wrong_key_rejected() -> None:
    assert _reason(_signed(secret=OTHER_SECRET)) == "no_matching_signature"


def test_changed_id_or_timestamp_rejected() -> None:
    headers = _signed()
    assert _reason(headers | {"webhook-id": "msg_test2"}) == "no_matching_signature"
    assert _reason(headers | {"webhook-timestamp": str(NOW + 1)}) == "no_matching_signature"


@pytest.mark.parametrize(
    ("skew", "reason"), [(-301, "timestamp_too_old"), (301, "timestamp_too_new")]
)
def test_timestamp_beyond_tolerance_rejected(skew: int, reason: str) -> None:
    # A validly signed message, but stale (replay) or from the future (clock abuse).
    assert _reason(_signed(now=NOW + skew)) == reason


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_rejected(missing: str) -> None:
    headers = _signed()
    del headers[missing]
    assert _reason(headers) == "missing_headers"
    assert _reason(headers | {missing: ""}) == "missing_headers"


@pytest.mark.parametrize(
    "ts", ["abc", "1700000000.5", "-1700000000", "+1700000000", "1_700_000_000", "１７"]
)
def test_non_integer_timestamp_rejected(ts: str) -> None:
    assert _reason(_signed() | {"webhook-timestamp": ts}) == "bad_timestamp"


def test_other_versions_ignored() -> None:
    headers = _signed()
    value = headers["webhook-signature"].split(",", 1)[1]
    # The right MAC under another version label must not count.
    assert _reason(headers | {"webhook-signature": f"v2,{value}"}) == "no_matching_signature"
    assert _reason(headers | {"webhook-signature": f"v1a,{value}"}) == "no_matching_signature"
    verify(SECRET, headers | {"webhook-signature": f"v2,{value} v1,{value}"}, BODY, now=NOW)


@pytest.mark.parametrize("junk", ["garbage", "v1,", "v1", "v1,ключ", ",,,", "v1,@@@@ v1,"])
def test_malformed_signature_entries_rejected_without_crashing(junk: str) -> None:
    assert _reason(_signed() | {"webhook-signature": junk}) == "no_matching_signature"


def test_default_now_is_wall_clock() -> None:
    verify(SECRET, make_headers(SECRET, BODY), BODY)
    with pytest.raises(SignatureError):
        verify(SECRET, _signed(now=int(time.time()) - 1000), BODY)


# ---- secrets (config time) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_%%%%", "wh_abc"],
)
def test_bad_secret_is_a_config_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_secret(bad)
    with pytest.raises(ValueError):
        sign(bad, "msg_1", NOW, BODY)


def test_unpadded_secret_accepted() -> None:
    key = b"0123456789abcdef0"  # 17 bytes: base64 needs padding
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("=")
    assert parse_secret(padded) == parse_secret(padded.rstrip("=")) == key


# ---- cross-check with the standardwebhooks library ----------------------------------------------
def test_theirs_signs_ours_verifies() -> None:
    now = datetime.fromtimestamp(NOW, tz=UTC)
    signature = Webhook(SECRET).sign("msg_x", now, BODY.decode())
    assert signature == sign(SECRET, "msg_x", NOW, BODY)
    verify(SECRET, _headers("msg_x", NOW, signature), BODY, now=NOW)


def test_ours_signs_theirs_verifies() -> None:
    headers = make_headers(SECRET, BODY)  # theirs checks against the wall clock
    Webhook(SECRET).verify(BODY, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(BODY, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY + b" ", headers, json_parse=False)
