"""Standard Webhooks signatures for the generic channel, and the Telegram secret-token rule.

Everything here works on the RAW request bytes (platforms.md §0.1): the signed message is
``b"<webhook-id>.<webhook-timestamp>." + body``, so a body that was parsed and re-serialized would
no longer verify. Spec: platforms.md §6, vectors in §7 ``standard_webhooks``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SECRET_PREFIX",
    "TELEGRAM_SECRET_RE",
    "SignatureError",
    "is_valid_telegram_secret",
    "make_headers",
    "new_msg_id",
    "parse_secret",
    "sign",
    "verify",
]

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300

# Telegram's setWebhook secret_token: 1-256 chars of [A-Za-z0-9_-] (platforms.md §1.1).
# Use it with fullmatch(): "$" alone would also accept a trailing "\n".
TELEGRAM_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$", re.ASCII)

# Unix seconds as plain ASCII digits: int() alone would also accept "+1", " 1", "1_0" or "١".
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}", re.ASCII)


class SignatureError(Exception):
    """An inbound delivery failed authentication; ``reason`` is short and safe to log or return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_secret(secret: str) -> bytes:
    """Decode a ``whsec_<base64>`` secret to the HMAC key; ValueError lets bad config fail early."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_'")
    encoded = secret[len(SECRET_PREFIX) :]
    # Some generators drop the "=" padding (the reference library re-pads too).
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64 after 'whsec_'") from exc
    if not key:
        raise ValueError("webhook secret key is empty")
    return key


def _signature_b64(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """Return the ``v1,<base64>`` signature entry for one message."""
    return "v1," + _signature_b64(parse_secret(secret), msg_id, str(timestamp), body)


def new_msg_id() -> str:
    """A fresh ``webhook-id``; the caller must persist it so a retry reuses the same id."""
    return "msg_" + secrets.token_urlsafe(18)


def make_headers(
    secret: str,
    body: bytes,
    msg_id: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """Signed Standard Webhooks headers for an outbound push of exactly ``body``."""
    msg_id = msg_id or new_msg_id()
    timestamp = str(int(time.time() if now is None else now))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless ``body`` carries a valid, fresh ``v1`` signature.

    Reasons: ``missing_headers``, ``bad_timestamp``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``no_matching_signature``.
    """
    key = parse_secret(secret)  # ValueError: a config problem, not the sender's fault
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "").strip()
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise SignatureError("missing_headers")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError("bad_timestamp")
    # The window check comes before the HMAC so replays of old deliveries cost no hashing.
    skew = int(timestamp) - (time.time() if now is None else now)
    if skew < -tolerance_s:
        raise SignatureError("timestamp_too_old")
    if skew > tolerance_s:
        raise SignatureError("timestamp_too_new")

    expected = _signature_b64(key, msg_id, timestamp, body).encode("ascii")
    matched = False
    # Several entries allow key rotation; unknown versions (v1a, v2 …) are skipped, not errors.
    # Every v1 entry is compared (no early exit) so timing does not reveal which one matched.
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1" or not value.isascii():
            continue
        matched |= hmac.compare_digest(value.encode("ascii"), expected)
    if not matched:
        raise SignatureError("no_matching_signature")


def is_valid_telegram_secret(token: str) -> bool:
    """True if ``token`` is allowed as Telegram's ``secret_token`` (checked at config time)."""
    return isinstance(token, str) and TELEGRAM_SECRET_RE.fullmatch(token) is not None
