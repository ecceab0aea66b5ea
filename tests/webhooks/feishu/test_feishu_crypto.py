"""Feishu/Lark: every §7 ``lark_*`` vector, the §9 negatives (bad ``X-Lark-Signature``;
``url_verification`` needs no signature headers), hypothesis properties, and lark-oapi's own
``AESCipher``, ``EventDispatcherHandler`` and ``CardActionHandler`` as the independent side.
lark-oapi has no custom-bot signing; that one is checked against Feishu's documented sample."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.dingtalk.crypto import sign as dingtalk_sign
from webhooks.errors import (
    BadBase64,
    BadPadding,
    BadPlaintext,
    BadSignature,
    BadToken,
    TruncatedCiphertext,
    WebhookError,
)
from webhooks.feishu.crypto import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    bot_sign,
    bot_signed_fields,
    card_signature,
    check_card_signature,
    check_event_signature,
    check_token,
    decrypt,
    encrypt,
    event_signature,
)

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "spec" / "platforms.md"

ENCRYPT_KEY = "test key"
VERIFICATION_TOKEN = "xxxxxx"
TS, NONCE = "1700000000", "nonce-abc"


def _load_vectors() -> dict[str, Any] | None:
    if not SPEC.is_file():
        return None
    match = re.search(r"```python\n(VECTORS = \{.*?\n\})\n```", SPEC.read_text("utf-8"), re.S)
    # The block is a JSON-compatible Python literal: parse it, never exec it.
    return ast.literal_eval(match.group(1).removeprefix("VECTORS = ")) if match else None


VECTORS = _load_vectors()
DECRYPT: list[dict[str, str]] = VECTORS["lark_decrypt"] if VECTORS else []
EVENT_SIG: list[dict[str, str]] = VECTORS["lark_event_signature"] if VECTORS else []
CARD_SIG: list[dict[str, str]] = VECTORS["lark_card_signature"] if VECTORS else []
BOT_SIGN: list[dict[str, str]] = VECTORS["lark_bot_sign"] if VECTORS else []


def _ids(case: dict[str, str]) -> str:
    return case["source"][:60]


def _raw_aes(iv: bytes, padded: bytes, encrypt_key: str = ENCRYPT_KEY) -> str:
    """AES-CBC of already-padded bytes: ciphertexts Feishu would never send."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def _message_event(token: str = VERIFICATION_TOKEN) -> dict[str, Any]:
    """A minimal ``im.message.receive_v1`` event (platforms.md §5.1)."""
    return {
        "schema": "2.0",
        "header": {
            "event_id": "5e3702a84e847582be8db7fb73283c02",
            "event_type": "im.message.receive_v1",
            "create_time": "1700000000000",
            "token": token,
            "app_id": "cli_9f5343c580712544",
            "tenant_key": "2ca1d211f64f6438",
        },
        "event": {
            "sender": {"sender_id": {"open_id": "ou_1"}, "sender_type": "user"},
            "message": {
                "message_id": "om_1",
                "chat_id": "oc_1",
                "chat_type": "p2p",
                "message_type": "text",
                "content": json.dumps({"text": "楼道里的灯坏了"}, ensure_ascii=False),
            },
        },
    }


def test_spec_vectors_present() -> None:
    if VECTORS is None:
        pytest.skip(f"spec with test vectors not found at {SPEC}")
    assert len(DECRYPT) >= 2 and EVENT_SIG and CARD_SIG and BOT_SIGN


# ---- spec vectors (platforms.md §7) -------------------------------------------------------------
@pytest.mark.parametrize("case", DECRYPT, ids=_ids)
def test_decrypt_vectors(case: dict[str, str]) -> None:
    assert decrypt(case["encrypt_key"], case["encrypt"]) == case["plaintext"]
    iv = base64.b64decode(case["encrypt"])[:16]
    assert encrypt(case["encrypt_key"], case["plaintext"], iv) == case["encrypt"]


@pytest.mark.parametrize("case", EVENT_SIG, ids=_ids)
def test_event_signature_vectors(case: dict[str, str]) -> None:
    body = case["raw_body"].encode()
    args = (case["timestamp"], case["nonce"], case["encrypt_key"], body)
    assert event_signature(*args) == case["signature"]
    check_event_signature(
        case["encrypt_key"], case["timestamp"], case["nonce"], case["signature"], body
    )


@pytest.mark.parametrize("case", CARD_SIG, ids=_ids)
def test_card_signature_vectors(case: dict[str, str]) -> None:
    body = case["raw_body"].encode()
    token = case["verification_token"]
    assert card_signature(case["timestamp"], case["nonce"], token, body) == case["signature"]
    check_card_signature(token, case["timestamp"], case["nonce"], case["signature"], body)


@pytest.mark.parametrize("case", BOT_SIGN, ids=_ids)
def test_bot_sign_vectors(case: dict[str, str]) -> None:
    assert bot_sign(case["timestamp"], case["secret"]) == case["sign"]
    assert bot_sign(int(case["timestamp"]), case["secret"]) == case["sign"]
    assert bot_signed_fields(case["secret"], now=int(case["timestamp"])) == {
        "timestamp": case["timestamp"],
        "sign": case["sign"],
    }
    # The vector's "wrong" value is DingTalk's recipe (key and message swapped): not ours.
    assert bot_sign(case["timestamp"], case["secret"]) != case["dingtalk_style_wrong_sign"]
    assert dingtalk_sign(case["timestamp"], case["secret"]) == case["dingtalk_style_wrong_sign"]


def _feishu_doc_sample(timestamp: str, secret: str) -> str:
    """Feishu's documented Python sample (自定义机器人使用指南 → 签名校验), in substance."""
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return base64.b64encode(hmac_code).decode("utf-8")


@given(secret=st.text(min_size=1, max_size=64), timestamp=st.integers(0, 10**11))
def test_bot_sign_equals_doc_sample(secret: str, timestamp: int) -> None:
    assert bot_sign(timestamp, secret) == _feishu_doc_sample(str(timestamp), secret)


def test_bot_signed_fields_default_clock_in_seconds() -> None:
    fields = bot_signed_fields("s")
    assert abs(int(fields["timestamp"]) - time.time()) < 60


# ---- §9: url_verification needs no signature; events with a bad signature are refused ---------
def test_url_verification_is_answered_on_the_token_alone() -> None:
    case = next((c for c in DECRYPT if "url_verification" in c["plaintext"]), None)
    if case is None:
        pytest.skip("encrypted url_verification vector not in the spec")
    payload = json.loads(decrypt(case["encrypt_key"], case["encrypt"]))
    assert payload["type"] == "url_verification"
    check_token(VERIFICATION_TOKEN, payload["token"])  # no X-Lark-* headers involved
    assert payload["challenge"] == "ajls384kdjx98XX"
    with pytest.raises(BadToken):
        check_token("another-token", payload["token"])


@pytest.mark.parametrize("case", EVENT_SIG, ids=_ids)
def test_event_signature_negatives(case: dict[str, str]) -> None:
    body = case["raw_body"].encode()
    key, ts, nonce, sig = case["encrypt_key"], case["timestamp"], case["nonce"], case["signature"]
    for i in (0, len(sig) // 2, len(sig) - 1):  # one hex digit off
        flipped = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
        with pytest.raises(BadSignature):
            check_event_signature(key, ts, nonce, flipped, body)
    bad_calls = [
        (key + "x", ts, nonce, sig, body),  # wrong key
        (key, ts, nonce, sig, body + b" "),  # body one byte longer
        (key, ts, nonce, sig, body.replace(b"{", b"{ ", 1)),  # re-serialized body
        (key, str(int(ts) + 1), nonce, sig, body),  # other timestamp
        (key, ts, nonce + "x", sig, body),  # other nonce
        (key, ts, nonce, sig.upper(), body),  # Feishu sends lowercase hex
    ]
    for args in bad_calls:
        with pytest.raises(BadSignature):
            check_event_signature(*args)


@pytest.mark.parametrize("missing", [HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE])
def test_missing_signature_header_rejected(missing: str) -> None:
    body = b'{"encrypt":"x"}'
    headers: dict[str, str | None] = {
        HEADER_TIMESTAMP: TS,
        HEADER_NONCE: NONCE,
        HEADER_SIGNATURE: event_signature(TS, NONCE, ENCRYPT_KEY, body),
    }
    for value in (None, ""):
        headers[missing] = value
        with pytest.raises(BadSignature) as info:
            check_event_signature(
                ENCRYPT_KEY,
                headers[HEADER_TIMESTAMP],
                headers[HEADER_NONCE],
                headers[HEADER_SIGNATURE],
                body,
            )
        assert info.value.reason == "missing_headers"


@pytest.mark.parametrize("case", CARD_SIG, ids=_ids)
def test_card_signature_negatives(case: dict[str, str]) -> None:
    body = case["raw_body"].encode()
    token, ts, nonce, sig = (
        case["verification_token"],
        case["timestamp"],
        case["nonce"],
        case["signature"],
    )
    with pytest.raises(BadSignature):
        check_card_signature(token + "x", ts, nonce, sig, body)
    with pytest.raises(BadSignature):
        check_card_signature(token, ts, nonce, sig[:-1] + ("0" if sig[-1] != "0" else "1"), body)
    with pytest.raises(BadSignature):
        check_card_signature(token, ts, None, sig, body)


@pytest.mark.parametrize(
    "received", [None, "", "xxxxx", "xxxxxxx", "XXXXXX", 123, ["xxxxxx"], "令牌"]
)
def test_check_token_rejects(received: object) -> None:
    with pytest.raises(BadToken):
        check_token(VERIFICATION_TOKEN, received)


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        check_token("", "x")
    with pytest.raises(ValueError):
        check_event_signature("", TS, NONCE, "x", b"")
    with pytest.raises(ValueError):
        check_card_signature("", TS, NONCE, "x", b"")
    with pytest.raises(ValueError):
        decrypt("", "x")
    with pytest.raises(ValueError):
        bot_sign(TS, "")
    with pytest.raises(ValueError):
        encrypt(ENCRYPT_KEY, "x", iv=b"short")


# ---- decryption negatives -----------------------------------------------------------------------
IV = bytes(range(16))


@pytest.mark.parametrize("blob", ["%%%%", "密文", "abc", "YW Jj", "YWJj\n", 42, None])
def test_bad_base64_rejected(blob: Any) -> None:
    with pytest.raises(BadBase64):
        decrypt(ENCRYPT_KEY, blob)


@pytest.mark.parametrize("size", [0, 1, 16, 31, 33, 47])
def test_truncated_ciphertext_rejected(size: int) -> None:
    with pytest.raises(TruncatedCiphertext):
        decrypt(ENCRYPT_KEY, base64.b64encode(b"\x07" * size).decode())


def test_ciphertext_cut_by_one_block_rejected() -> None:
    data = base64.b64decode(encrypt(ENCRYPT_KEY, "hello world", IV))
    assert len(data) == 32  # IV + one block: nothing left to cut but the data itself
    with pytest.raises(TruncatedCiphertext):
        decrypt(ENCRYPT_KEY, base64.b64encode(data[:-16]).decode())


@pytest.mark.parametrize(
    "block",
    [
        b"hello world" + bytes(5),  # pad byte 0
        b"hello world" + b"\x11" * 5,  # pad byte 17 > 16
        b"hello world" + b"\x05\x05\x06\x05\x05",  # inconsistent
        b"\x10" * 15 + b"\x0f",  # claims 15 bytes of padding, 14 of them are 0x10
    ],
    ids=["zero", "over-16", "inconsistent", "inconsistent-long"],
)
def test_corrupted_padding_rejected(block: bytes) -> None:
    assert len(block) == 16
    with pytest.raises(BadPadding):
        decrypt(ENCRYPT_KEY, _raw_aes(IV, block))


def test_wrong_key_rejected() -> None:
    blob = encrypt(ENCRYPT_KEY, json.dumps(_message_event()), IV)
    with pytest.raises((BadPadding, BadPlaintext)):
        decrypt("another key", blob)


def test_non_utf8_plaintext_rejected() -> None:
    with pytest.raises(BadPlaintext):
        decrypt(ENCRYPT_KEY, _raw_aes(IV, b"\xff\xfe\xfd" + b"\x0d" * 13))


# ---- hypothesis ---------------------------------------------------------------------------------
@given(message=st.text(), key=st.text(min_size=1, max_size=40))
def test_decrypt_inverts_encrypt(message: str, key: str) -> None:
    assert decrypt(key, encrypt(key, message)) == message


@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_our_errors(data: bytes) -> None:
    with pytest.raises(WebhookError):
        decrypt(ENCRYPT_KEY, base64.b64encode(data).decode())


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=120)


@given(blob=_ANY_TEXT)
def test_hostile_encrypt_text_raises_only_our_errors(blob: str) -> None:
    with pytest.raises(WebhookError):
        decrypt(ENCRYPT_KEY, blob)


@given(ts=_ANY_TEXT, nonce=_ANY_TEXT, sig=_ANY_TEXT, body=st.binary(max_size=200))
def test_hostile_headers_raise_only_bad_signature(
    ts: str, nonce: str, sig: str, body: bytes
) -> None:
    with pytest.raises(BadSignature):
        check_event_signature(ENCRYPT_KEY, ts, nonce, sig, body)
    with pytest.raises(BadSignature):
        check_card_signature(VERIFICATION_TOKEN, ts, nonce, sig, body)


@given(received=st.one_of(_ANY_TEXT, st.integers(), st.none(), st.lists(st.text(), max_size=2)))
def test_hostile_token_raises_only_bad_token(received: object) -> None:
    with pytest.raises(BadToken):
        check_token(VERIFICATION_TOKEN, received)


# ---- cross-check with lark-oapi -----------------------------------------------------------------
@pytest.fixture(scope="module")
def lark() -> Any:
    return pytest.importorskip("lark_oapi", reason="lark-oapi is not installed")


def _lark_cipher(key: str) -> Any:
    from lark_oapi.core.utils.decryptor import AESCipher

    return AESCipher(key)


@pytest.mark.parametrize("case", DECRYPT, ids=_ids)
def test_lark_decrypts_vectors(lark: Any, case: dict[str, str]) -> None:
    assert _lark_cipher(case["encrypt_key"]).decrypt_str(case["encrypt"]) == case["plaintext"]


@settings(max_examples=80, deadline=None)  # first call imports SDK internals lazily
@given(message=st.text(), key=st.text(min_size=1, max_size=40))
def test_lark_decrypts_ours(lark: Any, message: str, key: str) -> None:
    assert _lark_cipher(key).decrypt_str(encrypt(key, message)) == message


def test_lark_also_refuses_bad_padding(lark: Any) -> None:
    blob = _raw_aes(IV, b"hello world" + b"\x05\x05\x06\x05\x05")
    with pytest.raises(ValueError):
        _lark_cipher(ENCRYPT_KEY).decrypt_str(blob)
    with pytest.raises(BadPadding):
        decrypt(ENCRYPT_KEY, blob)


def _lark_request(body: bytes, headers: dict[str, str]) -> Any:
    from lark_oapi.core.model import RawRequest

    request = RawRequest()
    request.uri = "/webhooks/feishu"
    request.body = body
    request.headers = headers
    return request


def _event_handler(received: list[Any]) -> Any:
    from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

    return (
        EventDispatcherHandler.builder(ENCRYPT_KEY, VERIFICATION_TOKEN)
        .register_p2_im_message_receive_v1(received.append)
        .build()
    )


def test_lark_dispatcher_accepts_our_signature_and_refuses_a_bad_one(lark: Any) -> None:
    plaintext = json.dumps(_message_event(), ensure_ascii=False)
    body = json.dumps({"encrypt": encrypt(ENCRYPT_KEY, plaintext)}).encode()
    good = event_signature(TS, NONCE, ENCRYPT_KEY, body)
    headers = {HEADER_TIMESTAMP: TS, HEADER_NONCE: NONCE, HEADER_SIGNATURE: good}
    received: list[Any] = []
    handler = _event_handler(received)
    assert handler.do(_lark_request(body, headers)).status_code == 200
    assert len(received) == 1 and received[0].event.message.message_id == "om_1"
    # Ours agrees on both.
    check_event_signature(ENCRYPT_KEY, TS, NONCE, good, body)
    bad = "0" + good[1:] if good[0] != "0" else "1" + good[1:]
    assert handler.do(_lark_request(body, headers | {HEADER_SIGNATURE: bad})).status_code == 500
    assert len(received) == 1
    with pytest.raises(BadSignature):
        check_event_signature(ENCRYPT_KEY, TS, NONCE, bad, body)


@pytest.mark.parametrize("case", EVENT_SIG, ids=_ids)
def test_lark_accepts_event_signature_vector(lark: Any, case: dict[str, str]) -> None:
    from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

    handler = EventDispatcherHandler.builder(case["encrypt_key"], "").build()
    headers = {
        HEADER_TIMESTAMP: case["timestamp"],
        HEADER_NONCE: case["nonce"],
        HEADER_SIGNATURE: case["signature"],
    }
    handler._verify_sign(_lark_request(case["raw_body"].encode(), headers), case["encrypt_key"])


def test_lark_answers_url_verification_without_headers_like_us(lark: Any) -> None:
    case = next((c for c in DECRYPT if "url_verification" in c["plaintext"]), None)
    if case is None:
        pytest.skip("encrypted url_verification vector not in the spec")
    body = json.dumps({"encrypt": case["encrypt"]}).encode()
    from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

    handler = EventDispatcherHandler.builder(case["encrypt_key"], VERIFICATION_TOKEN).build()
    response = handler.do(_lark_request(body, {}))
    assert response.status_code == 200
    assert json.loads(response.content) == {"challenge": "ajls384kdjx98XX"}
    check_token(
        VERIFICATION_TOKEN, json.loads(decrypt(case["encrypt_key"], case["encrypt"]))["token"]
    )


@pytest.mark.parametrize("case", CARD_SIG, ids=_ids)
def test_lark_card_handler_accepts_card_vector(lark: Any, case: dict[str, str]) -> None:
    from lark_oapi.card.action_handler import CardActionHandler

    cards: list[Any] = []
    handler = (
        CardActionHandler.builder("", case["verification_token"]).register(cards.append).build()
    )
    headers = {
        HEADER_TIMESTAMP: case["timestamp"],
        HEADER_NONCE: case["nonce"],
        HEADER_SIGNATURE: case["signature"],
    }
    body = case["raw_body"].encode()
    assert handler.do(_lark_request(body, headers)).status_code == 200
    assert len(cards) == 1 and cards[0].open_id == "ou_1"
    wrong = headers | {HEADER_SIGNATURE: case["signature"][::-1]}
    assert handler.do(_lark_request(body, wrong)).status_code == 500
