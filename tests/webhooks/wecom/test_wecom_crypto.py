"""WeCom WXBizMsgCrypt: every §7 ``wechat_msg_crypt`` vector, the §9 negatives, properties under
hypothesis, and a cross-check with wechatpy's independent implementation in both directions."""

from __future__ import annotations

import ast
import base64
import re
import struct
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.errors import (
    BadBase64,
    BadPadding,
    BadPlaintext,
    BadSignature,
    TruncatedCiphertext,
    WebhookError,
    WrongReceiveId,
)
from webhooks.wecom.crypto import (
    MsgCrypt,
    decrypt,
    encrypt,
    parse_aes_key,
    sha1_signature,
)
from webhooks.xmlsafe import parse_xml

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "spec" / "platforms.md"

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
OTHER_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TS, NONCE = "1409659813", "1372623149"
MESSAGE = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    "<FromUserName><![CDATA[zhangayi]]></FromUserName><CreateTime>1409659813</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[楼道里的灯坏了]]></Content>"
    "<MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>"
)


def _load_vectors() -> dict[str, Any] | None:
    if not SPEC.is_file():
        return None
    match = re.search(r"```python\n(VECTORS = \{.*?\n\})\n```", SPEC.read_text("utf-8"), re.S)
    # The block is a JSON-compatible Python literal: parse it, never exec it.
    return ast.literal_eval(match.group(1).removeprefix("VECTORS = ")) if match else None


VECTORS = _load_vectors()
MSG_CRYPT: list[dict[str, str]] = VECTORS["wechat_msg_crypt"] if VECTORS else []


def _crypt(case: dict[str, str]) -> MsgCrypt:
    return MsgCrypt(case["token"], case["encoding_aes_key"], case["receive_id"])


def _signed(encrypt_b64: str, token: str = TOKEN) -> tuple[str, str, str, str]:
    """(msg_signature, timestamp, nonce, encrypt) as WeCom would send them."""
    return sha1_signature(token, TS, NONCE, encrypt_b64), TS, NONCE, encrypt_b64


def _raw_aes(plain: bytes, aes_key: str = AES_KEY) -> str:
    """AES-CBC of already-padded bytes: lets a test build ciphertexts WeCom would never send."""
    key = parse_aes_key(aes_key)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _layout(msg: bytes, rid: bytes = CORP_ID.encode(), length: int | None = None) -> bytes:
    n = len(msg) if length is None else length
    return b"0123456789abcdef" + struct.pack(">I", n) + msg + rid


def _pkcs7(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


def test_spec_vectors_present() -> None:
    if VECTORS is None:
        pytest.skip(f"spec with test vectors not found at {SPEC}")
    assert len(MSG_CRYPT) >= 6
    assert VECTORS["wecom_echostr_urlencoded"]["echostr"]


# ---- spec vectors (platforms.md §7 wechat_msg_crypt) --------------------------------------------
@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_signature(case: dict[str, str]) -> None:
    parts = (case["token"], case["timestamp"], case["nonce"], case["encrypt"])
    assert sha1_signature(*parts) == case["msg_signature"]
    _crypt(case).check_signature(case["msg_signature"], *parts[1:])


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_decrypt(case: dict[str, str]) -> None:
    got = _crypt(case).decrypt_message(
        case["msg_signature"], case["timestamp"], case["nonce"], case["encrypt"]
    )
    assert got == case["plaintext"]
    key = parse_aes_key(case["encoding_aes_key"])
    assert decrypt(key, case["encrypt"], case["receive_id"]) == case["plaintext"]


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_encrypt_is_bit_exact(case: dict[str, str]) -> None:
    key = parse_aes_key(case["encoding_aes_key"])
    random16 = case["random"].encode()
    assert encrypt(key, case["plaintext"], case["receive_id"], random16) == case["encrypt"]


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_reply_envelope_is_bit_exact(case: dict[str, str]) -> None:
    envelope = _crypt(case).encrypt_reply(
        case["plaintext"],
        timestamp=int(case["timestamp"]),
        nonce=case["nonce"],
        random16=case["random"].encode(),
    )
    # The envelope of platforms.md §8 wechat_encrypted_reply.
    assert envelope == (
        f"<xml><Encrypt><![CDATA[{case['encrypt']}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{case['msg_signature']}]]></MsgSignature>"
        f"<TimeStamp>{case['timestamp']}</TimeStamp><Nonce><![CDATA[{case['nonce']}]]></Nonce></xml>"
    )


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_wrong_receive_id_rejected(case: dict[str, str]) -> None:
    other = MsgCrypt(case["token"], case["encoding_aes_key"], case["receive_id"] + "x")
    with pytest.raises(WrongReceiveId):
        other.decrypt_message(
            case["msg_signature"], case["timestamp"], case["nonce"], case["encrypt"]
        )
    with pytest.raises(WrongReceiveId):  # a prefix of the right id is not the right id either
        MsgCrypt(case["token"], case["encoding_aes_key"], case["receive_id"][:-1]).verify_url(
            case["msg_signature"], case["timestamp"], case["nonce"], case["encrypt"]
        )


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_signature_one_hex_digit_off_rejected(case: dict[str, str]) -> None:
    sig, rest = case["msg_signature"], (case["timestamp"], case["nonce"], case["encrypt"])
    for i in (0, len(sig) // 2, len(sig) - 1):
        flipped = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
        with pytest.raises(BadSignature):
            _crypt(case).decrypt_message(flipped, *rest)
    assert sig.upper() != sig
    with pytest.raises(BadSignature):  # WeChat sends lowercase hex: exact match only
        _crypt(case).decrypt_message(sig.upper(), *rest)


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_wrong_token_or_changed_field_rejected(case: dict[str, str]) -> None:
    args = (case["msg_signature"], case["timestamp"], case["nonce"], case["encrypt"])
    wrong_token = MsgCrypt(case["token"] + "x", case["encoding_aes_key"], case["receive_id"])
    with pytest.raises(BadSignature):
        wrong_token.decrypt_message(*args)
    for i in (1, 2):
        changed = list(args)
        changed[i] += "1"
        with pytest.raises(BadSignature):
            _crypt(case).decrypt_message(*changed)


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_vector_wrong_key_rejected(case: dict[str, str]) -> None:
    # Same token (the signature holds), another EncodingAESKey: decryption must fail, typed.
    other_key = OTHER_AES_KEY if case["encoding_aes_key"] != OTHER_AES_KEY else AES_KEY
    crypt = MsgCrypt(case["token"], other_key, case["receive_id"])
    with pytest.raises((BadPadding, BadPlaintext, WrongReceiveId)):
        crypt.decrypt_message(
            case["msg_signature"], case["timestamp"], case["nonce"], case["encrypt"]
        )


def test_echostr_url_encoded_in_query_decodes_once() -> None:
    if VECTORS is None:
        pytest.skip(f"spec with test vectors not found at {SPEC}")
    vector = VECTORS["wecom_echostr_urlencoded"]
    query = dict(urllib.parse.parse_qsl(vector["raw_query"], keep_blank_values=True))
    assert query["echostr"] == vector["echostr"]  # %2B → +, %2F → /, %3D → =
    get = next(c for c in MSG_CRYPT if c["encrypt"] == vector["echostr"])
    plain = _crypt(get).verify_url(
        query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
    )
    assert plain == get["plaintext"] == "1616140317555161061"
    # Decoding twice turns "+" into " ": the signature no longer matches.
    twice = urllib.parse.unquote_plus(query["echostr"])
    with pytest.raises(BadSignature):
        _crypt(get).verify_url(query["msg_signature"], query["timestamp"], query["nonce"], twice)


# ---- negatives with a valid signature: the decryption stage (platforms.md §9) -------------------
@pytest.mark.parametrize(
    "tail",
    [
        bytes(32),  # pad byte 0
        b"\x21" * 32,  # pad byte 33 > block size
        b"\x05" * 27 + b"\x07" + b"\x05" * 4,  # last 5 bytes not all 0x05
        b"\x04" * 31 + b"\x20",  # claims 32 bytes of padding, they are not all 0x20
    ],
    ids=["zero", "over-32", "inconsistent", "inconsistent-32"],
)
def test_corrupted_padding_rejected(tail: bytes) -> None:
    plain = _layout(b"hello")
    plain += b"\x00" * (-len(plain) % 32)  # whole blocks, then a bad final block
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(BadPadding):
        crypt.decrypt_message(*_signed(_raw_aes(plain + tail)))


def test_flipped_ciphertext_bit_rejected() -> None:
    good = encrypt(parse_aes_key(AES_KEY), MESSAGE, CORP_ID)
    data = bytearray(base64.b64decode(good))
    data[-17] ^= 0x80  # CBC: flips the last plaintext byte, i.e. the padding byte
    tampered = base64.b64encode(bytes(data)).decode()
    with pytest.raises(BadPadding):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(*_signed(tampered))


@pytest.mark.parametrize(
    ("plain", "reason"),
    [
        (b"0123456789abcdef\x00\x00", "too_short"),  # random + 2 of the 4 length bytes
        (_layout(b"hi", length=10_000), "bad_length"),  # length beyond the end
        (_layout(b"hi", length=2**32 - 1), "bad_length"),
        (_layout(b"\xff\xfe bad utf-8"), "not_utf8"),
    ],
)
def test_malformed_plaintext_rejected(plain: bytes, reason: str) -> None:
    with pytest.raises(BadPlaintext) as info:
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(*_signed(_raw_aes(_pkcs7(plain))))
    assert info.value.reason == reason


def test_receive_id_compared_as_bytes() -> None:
    # A receive id that is not UTF-8 must be a WrongReceiveId, not a UnicodeDecodeError.
    blob = _raw_aes(_pkcs7(_layout(b"hi", rid=b"\xff\xfe")))
    with pytest.raises(WrongReceiveId):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(*_signed(blob))


@pytest.mark.parametrize(
    "blob",
    [
        "",
        base64.b64encode(b"x" * 16).decode(),  # one AES block: not a whole 32-byte block
        base64.b64encode(b"x" * 48).decode(),
        base64.b64encode(b"x" * 31).decode(),
    ],
    ids=["empty", "16", "48", "31"],
)
def test_truncated_ciphertext_rejected(blob: str) -> None:
    with pytest.raises(TruncatedCiphertext):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(*_signed(blob))


def test_ciphertext_cut_by_one_block_rejected() -> None:
    good = base64.b64decode(encrypt(parse_aes_key(AES_KEY), MESSAGE, CORP_ID))
    cut = base64.b64encode(good[:-16]).decode()
    with pytest.raises(TruncatedCiphertext):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(*_signed(cut))


@pytest.mark.parametrize("blob", ["%%%%", "密文密文", "abc", "YWJj\n", "YW Jj", "YW=j"])
def test_bad_base64_rejected(blob: str) -> None:
    with pytest.raises(BadBase64):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(*_signed(blob))


@pytest.mark.parametrize("signature", ["", "签名", "\ud800", "a" * 1000, None])
def test_odd_signature_values_are_bad_signatures(signature: Any) -> None:
    encrypted = encrypt(parse_aes_key(AES_KEY), MESSAGE, CORP_ID)
    with pytest.raises(BadSignature):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(signature, TS, NONCE, encrypted)


def test_missing_parameters_are_bad_signatures() -> None:
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP_ID)
    sig, ts, nonce, encrypted = _signed(encrypt(parse_aes_key(AES_KEY), MESSAGE, CORP_ID))
    for args in [(sig, None, nonce, encrypted), (sig, ts, None, encrypted), (sig, ts, nonce, None)]:
        with pytest.raises(BadSignature):
            crypt.decrypt_message(*args)  # type: ignore[arg-type]


# ---- configuration errors are ValueError, raised at construction --------------------------------
@pytest.mark.parametrize(
    "aes_key", ["", AES_KEY[:-1], AES_KEY + "A", AES_KEY[:-1] + "+", AES_KEY[:-1] + "密"]
)
def test_bad_encoding_aes_key_is_a_config_error(aes_key: str) -> None:
    with pytest.raises(ValueError):
        MsgCrypt(TOKEN, aes_key, CORP_ID)


def test_empty_token_or_receive_id_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        MsgCrypt("", AES_KEY, CORP_ID)
    with pytest.raises(ValueError):
        MsgCrypt(TOKEN, AES_KEY, "")


def test_reply_rejects_bad_random_or_nonce() -> None:
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(ValueError):
        crypt.encrypt_reply(MESSAGE, random16=b"short")
    with pytest.raises(ValueError):
        crypt.encrypt_reply(MESSAGE, nonce="]]><x>")


def test_key_never_in_repr() -> None:
    assert AES_KEY not in repr(MsgCrypt(TOKEN, AES_KEY, CORP_ID))
    assert TOKEN not in repr(MsgCrypt(TOKEN, AES_KEY, CORP_ID))


# ---- round trips and fuzzing (hypothesis) -------------------------------------------------------
@given(
    message=st.text(),
    receive_id=st.text(min_size=1, max_size=40),
    random16=st.binary(min_size=16, max_size=16),
)
def test_decrypt_inverts_encrypt(message: str, receive_id: str, random16: bytes) -> None:
    key = parse_aes_key(AES_KEY)
    assert decrypt(key, encrypt(key, message, receive_id, random16), receive_id) == message


@given(message=st.text())
def test_reply_envelope_round_trip(message: str) -> None:
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP_ID)
    fields = parse_xml(crypt.encrypt_reply(message))
    got = crypt.decrypt_message(
        fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]
    )
    assert got == message


@given(blocks=st.integers(1, 12).flatmap(lambda n: st.binary(min_size=32 * n, max_size=32 * n)))
def test_random_ciphertext_raises_only_our_errors(blocks: bytes) -> None:
    with pytest.raises(WebhookError):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(
            *_signed(base64.b64encode(blocks).decode())
        )


@given(data=st.binary(max_size=400))
def test_random_bytes_of_any_length_raise_only_our_errors(data: bytes) -> None:
    with pytest.raises(WebhookError):
        decrypt(parse_aes_key(AES_KEY), base64.b64encode(data).decode(), CORP_ID)


# Lone surrogates included: a query parser could hand them over, encoding must not crash.
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)


@given(sig=_ANY_TEXT, ts=_ANY_TEXT, nonce=_ANY_TEXT, blob=_ANY_TEXT)
def test_hostile_query_values_raise_only_our_errors(
    sig: str, ts: str, nonce: str, blob: str
) -> None:
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(BadSignature):
        crypt.decrypt_message(sig, ts, nonce, blob)
    # With a valid signature the ciphertext itself is reached: still only our errors.
    with pytest.raises(WebhookError):
        crypt.decrypt_message(sha1_signature(TOKEN, ts, nonce, blob), ts, nonce, blob)


# ---- cross-check with wechatpy (independent implementation) -------------------------------------
@pytest.fixture(scope="module")
def wechatpy_enterprise() -> Any:
    return pytest.importorskip("wechatpy.enterprise.crypto", reason="wechatpy is not installed")


def _post_body(encrypted: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    )


@pytest.mark.parametrize("case", MSG_CRYPT, ids=lambda c: c["source"][:60])
def test_wechatpy_agrees_on_vectors(wechatpy_enterprise: Any, case: dict[str, str]) -> None:
    theirs = wechatpy_enterprise.WeChatCrypto(
        case["token"], case["encoding_aes_key"], case["receive_id"]
    )
    args = (case["msg_signature"], case["timestamp"], case["nonce"])
    assert theirs.check_signature(*args, case["encrypt"]) == case["plaintext"]
    assert theirs.decrypt_message(_post_body(case["encrypt"]), *args) == case["plaintext"]


@settings(max_examples=60, deadline=None)  # first call imports SDK internals lazily
@given(message=st.text())
def test_theirs_encrypts_ours_decrypts(wechatpy_enterprise: Any, message: str) -> None:
    envelope = wechatpy_enterprise.WeChatCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(
        message, NONCE, TS
    )
    fields = parse_xml(envelope)
    got = MsgCrypt(TOKEN, AES_KEY, CORP_ID).decrypt_message(
        fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]
    )
    assert got == message


@settings(max_examples=60, deadline=None)  # first call imports SDK internals lazily
@given(message=st.text())
def test_ours_encrypts_theirs_decrypts(wechatpy_enterprise: Any, message: str) -> None:
    fields = parse_xml(MsgCrypt(TOKEN, AES_KEY, CORP_ID).encrypt_reply(message, nonce=NONCE))
    theirs = wechatpy_enterprise.WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    got = theirs.decrypt_message(
        _post_body(fields["Encrypt"]), fields["MsgSignature"], fields["TimeStamp"], NONCE
    )
    assert got == message


def test_wechatpy_rejects_what_we_reject(wechatpy_enterprise: Any) -> None:
    from wechatpy.exceptions import InvalidSignatureException

    sig, ts, nonce, encrypted = _signed(encrypt(parse_aes_key(AES_KEY), MESSAGE, CORP_ID))
    theirs = wechatpy_enterprise.WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(InvalidSignatureException):
        theirs.check_signature(("1" if sig[0] == "0" else "0") + sig[1:], ts, nonce, encrypted)
    other = wechatpy_enterprise.WeChatCrypto(TOKEN, AES_KEY, CORP_ID + "x")
    with pytest.raises(wechatpy_enterprise.InvalidCorpIdException):
        other.check_signature(sig, ts, nonce, encrypted)
    with pytest.raises(WrongReceiveId):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID + "x").verify_url(sig, ts, nonce, encrypted)


def test_we_are_stricter_than_wechatpy_on_padding(wechatpy_enterprise: Any) -> None:
    # wechatpy strips as many bytes as the last one says without checking them; we check all.
    plain = _layout(b"hello")
    pad = 32 - len(plain) % 32
    blob = _raw_aes(plain + b"\x01" + bytes([pad]) * (pad - 1))
    sig, ts, nonce, _ = _signed(blob)
    theirs = wechatpy_enterprise.WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    assert theirs.check_signature(sig, ts, nonce, blob) == "hello"
    with pytest.raises(BadPadding):
        MsgCrypt(TOKEN, AES_KEY, CORP_ID).verify_url(sig, ts, nonce, blob)
