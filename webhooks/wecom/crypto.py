"""WXBizMsgCrypt: the signed, AES-encrypted envelope of WeCom, also WeChat OA's safe mode.

Spec: platforms.md §2.2-§2.4 (and §3 for WeChat, which imports this module), vectors in §7
``wechat_msg_crypt``. Layout of the plaintext inside the ciphertext:
``random(16) ‖ len(msg) as 4 bytes big-endian ‖ msg (UTF-8) ‖ receive_id``, PKCS#7-padded to a
multiple of 32 bytes (not AES's 16), AES-256-CBC with key = base64(EncodingAESKey + "=") and
IV = key[:16].

Verify-then-decrypt: ``MsgCrypt`` checks ``msg_signature`` (which covers the ciphertext) before
decrypting, so padding errors are never observable to anyone without the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from webhooks.errors import (
    BadBase64,
    BadPadding,
    BadPlaintext,
    BadSignature,
    TruncatedCiphertext,
    WrongReceiveId,
)
from webhooks.xmlsafe import build_xml

__all__ = [
    "BLOCK_SIZE",
    "MsgCrypt",
    "decrypt",
    "encrypt",
    "parse_aes_key",
    "sha1_signature",
]

# WeChat's PKCS#7 block: every official sample (C++, Java, PHP, Python, Go) pads to 32 bytes.
BLOCK_SIZE = 32
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}", re.ASCII)
_HEADER = 16 + 4  # random + length
# Our own nonces are hex; WeChat's are digits. Anything else would not survive the XML envelope.
_NONCE_RE = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)


def _utf8(text: str) -> bytes:
    # surrogatepass: a hostile lone surrogate must yield a mismatch, not UnicodeEncodeError.
    return text.encode("utf-8", "surrogatepass")


def sha1_signature(*parts: str) -> str:
    """Hex SHA-1 of the parts sorted as plain strings and joined without separators.

    ``(token, timestamp, nonce)`` is WeChat's plaintext-mode ``signature``;
    ``(token, timestamp, nonce, encrypt)`` is ``msg_signature``. Code-point order equals the
    UTF-8 byte order WeChat uses, so ``sorted`` is exact.
    """
    return hashlib.sha1(_utf8("".join(sorted(parts)))).hexdigest()


def _same(expected: str, received: object) -> bool:
    """Constant-time equality that tolerates non-ASCII and non-str input from the request."""
    if not isinstance(received, str):
        return False
    return hmac.compare_digest(expected.encode("ascii"), _utf8(received))


def parse_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; ValueError for a bad config value."""
    if not isinstance(encoding_aes_key, str) or not _AES_KEY_RE.fullmatch(encoding_aes_key):
        raise ValueError("EncodingAESKey must be exactly 43 characters of [A-Za-z0-9]")
    return base64.b64decode(encoding_aes_key + "=")


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def encrypt(key: bytes, plaintext: str, receive_id: str, random16: bytes | None = None) -> str:
    """Base64 ciphertext of ``plaintext`` for ``receive_id``; ``random16`` only for tests."""
    random16 = secrets.token_bytes(16) if random16 is None else random16
    if len(random16) != 16:
        raise ValueError("random16 must be exactly 16 bytes")
    body = plaintext.encode("utf-8")
    raw = random16 + struct.pack(">I", len(body)) + body + receive_id.encode("utf-8")
    pad = BLOCK_SIZE - len(raw) % BLOCK_SIZE
    raw += bytes([pad]) * pad
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode("ascii")


def _b64decode(text: object) -> bytes:
    if not isinstance(text, str):
        raise BadBase64("not_a_string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
        raise BadBase64 from exc


def decrypt(key: bytes, encrypt_b64: str, receive_id: str) -> str:
    """The message inside ``encrypt_b64``; raise a WebhookError subclass on any defect.

    Only call this after the signature check (``MsgCrypt`` does): see the module docstring.
    """
    data = _b64decode(encrypt_b64)
    if not data or len(data) % BLOCK_SIZE:
        raise TruncatedCiphertext
    decryptor = _cipher(key).decryptor()
    raw = decryptor.update(data) + decryptor.finalize()
    pad = raw[-1]
    if not 1 <= pad <= BLOCK_SIZE or not hmac.compare_digest(raw[-pad:], bytes([pad]) * pad):
        raise BadPadding
    raw = raw[:-pad]
    if len(raw) < _HEADER:
        raise BadPlaintext("too_short")
    (msg_len,) = struct.unpack(">I", raw[16:_HEADER])
    if msg_len > len(raw) - _HEADER:
        raise BadPlaintext("bad_length")
    msg, rid = raw[_HEADER : _HEADER + msg_len], raw[_HEADER + msg_len :]
    if not hmac.compare_digest(rid, receive_id.encode("utf-8")):
        raise WrongReceiveId
    try:
        return msg.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPlaintext("not_utf8") from exc


class MsgCrypt:
    """One configured WeCom app (receive_id = CorpID) or WeChat OA (receive_id = AppID)."""

    __slots__ = ("_key", "_receive_id", "_token")

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise ValueError("token must not be empty")
        if not receive_id:
            raise ValueError("receive_id (CorpID/AppID) must not be empty")
        self._token = token
        self._key = parse_aes_key(encoding_aes_key)
        self._receive_id = receive_id

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise BadSignature unless ``msg_signature`` signs ``encrypt`` exactly as received."""
        if not all(isinstance(v, str) for v in (timestamp, nonce, encrypt)):
            raise BadSignature("missing_parameters")
        expected = sha1_signature(self._token, timestamp, nonce, encrypt)
        if not _same(expected, msg_signature):
            raise BadSignature

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Verify, then decrypt the ``Encrypt`` field of a callback (POST)."""
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return decrypt(self._key, encrypt, self._receive_id)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification (GET): the plaintext to answer, as text/plain, byte for byte.

        ``echostr`` must be URL-decoded exactly once (``%2B`` → ``+``), as a framework's query
        parser does; decoding it again would turn ``+`` into a space and fail here.
        """
        return self.decrypt_message(msg_signature, timestamp, nonce, echostr)

    def encrypt_reply(
        self,
        reply_xml: str,
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
        random16: bytes | None = None,
    ) -> str:
        """The passive-reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce) for ``reply_xml``.

        Defaults: now, a fresh nonce and fresh random bytes; tests pass them to be bit-exact.
        """
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = secrets.token_hex(5) if nonce is None else nonce
        if not _NONCE_RE.fullmatch(nonce):
            raise ValueError("nonce must be 1-32 ASCII letters or digits")
        encrypted = encrypt(self._key, reply_xml, self._receive_id, random16)
        signature = sha1_signature(self._token, str(timestamp), nonce, encrypted)
        return build_xml(
            {
                "Encrypt": encrypted,
                "MsgSignature": signature,
                "TimeStamp": timestamp,
                "Nonce": nonce,
            }
        )
