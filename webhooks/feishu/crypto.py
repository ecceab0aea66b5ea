"""Feishu/Lark: event decryption, request signatures, verification token, custom bot signing.

Spec: platforms.md §5, vectors in §7 ``lark_decrypt``, ``lark_event_signature``,
``lark_card_signature`` and ``lark_bot_sign``. Unlike WeChat, the IV travels in front of the
ciphertext and PKCS#7 uses AES's own 16-byte block.

``X-Lark-Signature`` is only sent when an Encrypt Key is configured, and never on the
``url_verification`` request: that one is authenticated by its verification token alone
(platforms.md §5.1, §9), so the view checks the token there and the signature everywhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from webhooks.errors import (
    BadBase64,
    BadPadding,
    BadPlaintext,
    BadSignature,
    BadToken,
    TruncatedCiphertext,
)

__all__ = [
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "bot_sign",
    "bot_signed_fields",
    "card_signature",
    "check_card_signature",
    "check_event_signature",
    "check_token",
    "decrypt",
    "encrypt",
    "event_signature",
]

HEADER_TIMESTAMP = "X-Lark-Request-Timestamp"
HEADER_NONCE = "X-Lark-Request-Nonce"
HEADER_SIGNATURE = "X-Lark-Signature"

_BLOCK = 16


def _utf8(text: str) -> bytes:
    # surrogatepass: a hostile lone surrogate must yield a mismatch, not UnicodeEncodeError.
    return text.encode("utf-8", "surrogatepass")


def _aes_key(encrypt_key: str) -> bytes:
    if not encrypt_key:
        raise ValueError("Feishu encrypt key must not be empty")
    return hashlib.sha256(encrypt_key.encode("utf-8")).digest()


def decrypt(encrypt_key: str, encrypt_b64: str) -> str:
    """The JSON text inside a ``{"encrypt": …}`` body; a WebhookError subclass on any defect."""
    key = _aes_key(encrypt_key)
    if not isinstance(encrypt_b64, str):
        raise BadBase64("not_a_string")
    try:
        data = base64.b64decode(encrypt_b64, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
        raise BadBase64 from exc
    if len(data) < 2 * _BLOCK or len(data) % _BLOCK:  # IV + at least one block
        raise TruncatedCiphertext
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:_BLOCK])).decryptor()
    raw = decryptor.update(data[_BLOCK:]) + decryptor.finalize()
    pad = raw[-1]
    if not 1 <= pad <= _BLOCK or not hmac.compare_digest(raw[-pad:], bytes([pad]) * pad):
        raise BadPadding
    try:
        return raw[:-pad].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPlaintext("not_utf8") from exc


def encrypt(encrypt_key: str, plaintext: str, iv: bytes | None = None) -> str:
    """What Feishu sends as ``encrypt``: for fakes and tests; ``iv`` fixed only in tests."""
    iv = secrets.token_bytes(_BLOCK) if iv is None else iv
    if len(iv) != _BLOCK:
        raise ValueError("iv must be exactly 16 bytes")
    data = plaintext.encode("utf-8")
    pad = _BLOCK - len(data) % _BLOCK
    data += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(_aes_key(encrypt_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(data) + encryptor.finalize()).decode("ascii")


def event_signature(timestamp: str, nonce: str, encrypt_key: str, raw_body: bytes) -> str:
    """``X-Lark-Signature``: hex SHA-256 of timestamp + nonce + encrypt_key + the raw body."""
    return hashlib.sha256(_utf8(timestamp + nonce + encrypt_key) + raw_body).hexdigest()


def card_signature(timestamp: str, nonce: str, verification_token: str, raw_body: bytes) -> str:
    """Legacy card-action callback signature: the same recipe with SHA-1 and the token."""
    return hashlib.sha1(_utf8(timestamp + nonce + verification_token) + raw_body).hexdigest()


def _check(expected: str, received: str) -> None:
    if not hmac.compare_digest(expected.encode("ascii"), _utf8(received)):
        raise BadSignature


def _header(value: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise BadSignature("missing_headers")
    return value


def check_event_signature(
    encrypt_key: str,
    timestamp: str | None,
    nonce: str | None,
    signature: str | None,
    raw_body: bytes,
) -> None:
    """Raise BadSignature unless the three ``X-Lark-*`` headers sign exactly ``raw_body``."""
    if not encrypt_key:
        raise ValueError("Feishu encrypt key must not be empty")
    ts, nonce_, sig = _header(timestamp), _header(nonce), _header(signature)
    _check(event_signature(ts, nonce_, encrypt_key, raw_body), sig)


def check_card_signature(
    verification_token: str,
    timestamp: str | None,
    nonce: str | None,
    signature: str | None,
    raw_body: bytes,
) -> None:
    """Raise BadSignature unless a legacy card-action callback is signed with our token."""
    if not verification_token:
        raise ValueError("Feishu verification token must not be empty")
    ts, nonce_, sig = _header(timestamp), _header(nonce), _header(signature)
    _check(card_signature(ts, nonce_, verification_token, raw_body), sig)


def check_token(verification_token: str, received: object) -> None:
    """Raise BadToken unless the payload's ``token`` (any JSON value) is our Verification Token."""
    if not verification_token:
        raise ValueError("Feishu verification token must not be empty")
    if not isinstance(received, str) or not hmac.compare_digest(
        _utf8(verification_token), _utf8(received)
    ):
        raise BadToken


def bot_sign(timestamp_s: int | str, secret: str) -> str:
    """Custom bot ``sign``: HMAC-SHA256 keyed with ``f"{timestamp}\\n{secret}"`` over b"", base64.

    The string is the key and the message is empty: DingTalk does the opposite, and mixing
    them up is answered with code 19021.
    """
    if not secret:
        raise ValueError("Feishu bot secret must not be empty")
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def bot_signed_fields(secret: str, *, now: int | None = None) -> dict[str, str]:
    """``{"timestamp", "sign"}`` to merge into a custom bot message body (timestamp in seconds)."""
    timestamp = str(int(time.time()) if now is None else now)
    return {"timestamp": timestamp, "sign": bot_sign(timestamp, secret)}
