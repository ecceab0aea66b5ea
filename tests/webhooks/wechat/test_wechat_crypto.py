"""WeChat Official Account: §7 ``wechat_sha1_signature`` (plaintext mode) and
``wechat_msg_crypt`` through safe mode, §9 negatives, hypothesis, and wechatpy's
``wechatpy.crypto.WeChatCrypto`` / ``check_signature`` as the independent cross-check."""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.errors import BadSignature, WebhookError, WrongReceiveId
from webhooks.wechat.crypto import (
    check_signature,
    plain_signature,
    safe_mode,
    verify_url,
)
from webhooks.wecom import crypto as wecom_crypto
from webhooks.xmlsafe import parse_xml

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "spec" / "platforms.md"

TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"
TS, NONCE = "1409735669", "1320562132"
# platforms.md §7, second wechat_sha1_signature vector: "echostr=4375120948345356249".
URL_CHECK_ECHOSTR = "4375120948345356249"


def _load_vectors() -> dict[str, Any] | None:
    if not SPEC.is_file():
        return None
    match = re.search(r"```python\n(VECTORS = \{.*?\n\})\n```", SPEC.read_text("utf-8"), re.S)
    # The block is a JSON-compatible Python literal: parse it, never exec it.
    return ast.literal_eval(match.group(1).removeprefix("VECTORS = ")) if match else None


VECTORS = _load_vectors()
SHA1: list[dict[str, Any]] = VECTORS["wechat_sha1_signature"] if VECTORS else []
MSG_CRYPT: list[dict[str, str]] = VECTORS["wechat_msg_crypt"] if VECTORS else []


def test_spec_vectors_present() -> None:
    if VECTORS is None:
        pytest.skip(f"spec with test vectors not found at {SPEC}")
    assert len(SHA1) >= 3 and len(MSG_CRYPT) >= 6


# ---- plaintext mode (platforms.md §7 wechat_sha1_signature) -------------------------------------
@pytest.mark.parametrize("case", SHA1, ids=lambda c: c["source"][:60])
def test_plain_signature_vectors(case: dict[str, Any]) -> None:
    token, timestamp, nonce = case["parts"]
    assert plain_signature(token, timestamp, nonce) == case["signature"]
    check_signature(token, case["signature"], timestamp, nonce)
    assert verify_url(token, case["signature"], timestamp, nonce, "echo") == "echo"


def test_url_verification_answers_echostr_verbatim() -> None:
    case = next((c for c in SHA1 if URL_CHECK_ECHOSTR in c["source"]), None)
    if case is None:
        pytest.skip("URL verification vector not in the spec")
    token, timestamp, nonce = case["parts"]
    assert verify_url(token, case["signature"], timestamp, nonce, URL_CHECK_ECHOSTR) == (
        URL_CHECK_ECHOSTR
    )


@pytest.mark.parametrize("case", SHA1, ids=lambda c: c["source"][:60])
def test_plain_signature_negatives(case: dict[str, Any]) -> None:
    token, timestamp, nonce = case["parts"]
    sig = case["signature"]
    for i in (0, len(sig) // 2, len(sig) - 1):  # one hex digit off
        flipped = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
        with pytest.raises(BadSignature):
            verify_url(token, flipped, timestamp, nonce, "echo")
    with pytest.raises(BadSignature):  # wrong token
        check_signature(token + "x", sig, timestamp, nonce)
    with pytest.raises(BadSignature):  # replayed with another timestamp
        check_signature(token, sig, str(int(timestamp) + 1), nonce)
    with pytest.raises(BadSignature):
        check_signature(token, sig.upper(), timestamp, nonce)


@pytest.mark.parametrize("signature", ["", "签名", "\ud800", None])
def test_odd_signatures_rejected(signature: Any) -> None:
    with pytest.raises(BadSignature):
        check_signature(TOKEN, signature, TS, NONCE)


def test_missing_values_rejected() -> None:
    sig = plain_signature(TOKEN, TS, NONCE)
    for args in [(sig, None, NONCE), (sig, TS, None)]:
        with pytest.raises(BadSignature):
            check_signature(TOKEN, *args)  # type: ignore[arg-type]
    with pytest.raises(BadSignature):
        verify_url(TOKEN, sig, TS, NONCE, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # config error, not the sender's fault
        check_signature("", sig, TS, NONCE)


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=100)


@given(sig=_ANY_TEXT, ts=_ANY_TEXT, nonce=_ANY_TEXT)
def test_hostile_query_raises_only_bad_signature(sig: str, ts: str, nonce: str) -> None:
    with pytest.raises(BadSignature):
        check_signature(TOKEN, sig, ts, nonce)


# ---- safe mode = WeCom's WXBizMsgCrypt with the AppID (platforms.md §3) -------------------------
def test_safe_mode_is_the_wecom_implementation() -> None:
    assert isinstance(safe_mode(TOKEN, AES_KEY, APP_ID), wecom_crypto.MsgCrypt)


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_safe_mode_vectors(case: dict[str, str]) -> None:
    crypt = safe_mode(case["token"], case["encoding_aes_key"], case["receive_id"])
    args = (case["msg_signature"], case["timestamp"], case["nonce"], case["encrypt"])
    assert crypt.decrypt_message(*args) == case["plaintext"]
    envelope = crypt.encrypt_reply(
        case["plaintext"],
        timestamp=int(case["timestamp"]),
        nonce=case["nonce"],
        random16=case["random"].encode(),
    )
    assert parse_xml(envelope) == {
        "Encrypt": case["encrypt"],
        "MsgSignature": case["msg_signature"],
        "TimeStamp": case["timestamp"],
        "Nonce": case["nonce"],
    }
    with pytest.raises(WrongReceiveId):  # valid signature, another account's AppID
        safe_mode(case["token"], case["encoding_aes_key"], "wx0000000000000000").decrypt_message(
            *args
        )


def test_safe_mode_post_body_end_to_end() -> None:
    case = next((c for c in MSG_CRYPT if c["receive_id"] == APP_ID), None)
    if case is None:
        pytest.skip("WeChat OA official vector not in the spec")
    body = (
        f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        f"<Encrypt><![CDATA[{case['encrypt']}]]></Encrypt></xml>"
    ).encode()
    crypt = safe_mode(TOKEN, AES_KEY, APP_ID)
    inner = crypt.decrypt_message(
        case["msg_signature"], case["timestamp"], case["nonce"], parse_xml(body)["Encrypt"]
    )
    message = parse_xml(inner)
    assert message["MsgType"] == "text" and message["Content"] == "abcdteT"
    assert message["MsgId"] == "6054768590064713728"


@given(message=st.text())
def test_safe_mode_round_trip(message: str) -> None:
    crypt = safe_mode(TOKEN, AES_KEY, APP_ID)
    fields = parse_xml(crypt.encrypt_reply(message))
    assert (
        crypt.decrypt_message(
            fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]
        )
        == message
    )


@given(blob=st.binary(max_size=300))
def test_safe_mode_random_ciphertext_raises_only_our_errors(blob: bytes) -> None:
    encrypted = base64.b64encode(blob).decode()
    sig = wecom_crypto.sha1_signature(TOKEN, TS, NONCE, encrypted)
    with pytest.raises(WebhookError):
        safe_mode(TOKEN, AES_KEY, APP_ID).decrypt_message(sig, TS, NONCE, encrypted)


# ---- cross-check with wechatpy ------------------------------------------------------------------
@pytest.fixture(scope="module")
def wechatpy_crypto() -> Any:
    return pytest.importorskip("wechatpy.crypto", reason="wechatpy is not installed")


@pytest.mark.parametrize("case", SHA1, ids=lambda c: c["source"][:60])
def test_wechatpy_accepts_plain_vectors(wechatpy_crypto: Any, case: dict[str, Any]) -> None:
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature as theirs

    token, timestamp, nonce = case["parts"]
    theirs(token, case["signature"], timestamp, nonce)
    with pytest.raises(InvalidSignatureException):
        theirs(token + "x", case["signature"], timestamp, nonce)


@settings(max_examples=100, deadline=None)  # first call imports SDK internals lazily
@given(
    token=st.text(min_size=1, max_size=40),
    timestamp=st.text(max_size=20),
    nonce=st.text(max_size=20),
)
def test_plain_signature_equals_wechatpy_for_any_text(
    wechatpy_crypto: Any, token: str, timestamp: str, nonce: str
) -> None:
    from wechatpy.utils import WeChatSigner

    signer = WeChatSigner()  # sorts UTF-8 bytes; we sort code points: same order
    signer.add_data(token, timestamp, nonce)
    assert plain_signature(token, timestamp, nonce) == signer.signature


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_wechatpy_decrypts_safe_mode_vectors(wechatpy_crypto: Any, case: dict[str, str]) -> None:
    theirs = wechatpy_crypto.WeChatCrypto(
        case["token"], case["encoding_aes_key"], case["receive_id"]
    )
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{case['encrypt']}]]></Encrypt></xml>"
    got = theirs.decrypt_message(body, case["msg_signature"], case["timestamp"], case["nonce"])
    assert got == case["plaintext"]


@settings(max_examples=60, deadline=None)  # first call imports SDK internals lazily
@given(message=st.text())
def test_wechatpy_and_safe_mode_interoperate(wechatpy_crypto: Any, message: str) -> None:
    theirs = wechatpy_crypto.WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    ours = safe_mode(TOKEN, AES_KEY, APP_ID)
    # theirs → ours
    fields = parse_xml(theirs.encrypt_message(message, NONCE, TS))
    args = (fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert ours.decrypt_message(*args) == message
    # ours → theirs
    envelope = ours.encrypt_reply(message, timestamp=int(TS), nonce=NONCE)
    fields = parse_xml(envelope)
    body = f"<xml><Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>"
    assert theirs.decrypt_message(body, fields["MsgSignature"], TS, NONCE) == message


def test_wechatpy_rejects_wrong_app_id_like_us(wechatpy_crypto: Any) -> None:
    from wechatpy.exceptions import InvalidAppIdException

    ours = safe_mode(TOKEN, AES_KEY, APP_ID)
    fields = parse_xml(ours.encrypt_reply("<xml/>", timestamp=int(TS), nonce=NONCE))
    body = f"<xml><Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>"
    with pytest.raises(InvalidAppIdException):
        wechatpy_crypto.WeChatCrypto(TOKEN, AES_KEY, "wx_other").decrypt_message(
            body, fields["MsgSignature"], TS, NONCE
        )
    with pytest.raises(WrongReceiveId):
        safe_mode(TOKEN, AES_KEY, "wx_other").decrypt_message(
            fields["MsgSignature"], TS, NONCE, fields["Encrypt"]
        )
