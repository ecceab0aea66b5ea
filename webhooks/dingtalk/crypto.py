"""DingTalk signatures: the enterprise robot's inbound check and the custom robot's URL signing.

Spec: platforms.md §4.1 (inbound) and §4.3 (outbound), vectors in §7 ``dingtalk_sign``. Both use
``base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}"))`` — note the key is the
secret and the message the timestamp line; Feishu's custom bot does the opposite.

The inbound signature covers only the timestamp, so a captured request replays for an hour:
the window here bounds it, and the view's dedupe by ``msgId`` does the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
import urllib.parse

from webhooks.errors import BadBase64, BadSignature, BadTimestamp, StaleTimestamp

__all__ = [
    "TIMESTAMP_WINDOW_MS",
    "sign",
    "sign_url",
    "signed_params",
    "signed_query",
    "verify_inbound",
]

TIMESTAMP_WINDOW_MS = 3_600_000  # |now - timestamp| <= 1 h, inclusive (§4.1)
# Milliseconds as plain ASCII digits: int() would also take "+1", " 1", "1_0" or "١".
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}", re.ASCII)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _mac(timestamp_ms: str, secret: str) -> bytes:
    msg = f"{timestamp_ms}\n{secret}".encode()
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).digest()


def sign(timestamp_ms: int | str, secret: str) -> str:
    """The base64 signature of one timestamp (not yet URL-encoded)."""
    if not secret:
        raise ValueError("DingTalk secret must not be empty")
    return base64.b64encode(_mac(str(timestamp_ms), secret)).decode("ascii")


def verify_inbound(
    timestamp: str | None,
    signature: str | None,
    app_secret: str,
    *,
    now_ms: int | None = None,
) -> None:
    """Check the ``timestamp`` and ``sign`` headers of an enterprise robot callback.

    Order: headers present, timestamp well-formed, inside the window (no hashing for stale
    replays), then the decoded signature compared in constant time.
    """
    if not app_secret:
        raise ValueError("DingTalk app secret must not be empty")
    if not timestamp or not signature:
        raise BadSignature("missing_headers")
    if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
        raise BadTimestamp
    skew = int(timestamp) - (_now_ms() if now_ms is None else now_ms)
    if skew < -TIMESTAMP_WINDOW_MS:
        raise StaleTimestamp("timestamp_too_old")
    if skew > TIMESTAMP_WINDOW_MS:
        raise StaleTimestamp("timestamp_too_new")
    if not isinstance(signature, str):
        raise BadBase64("not_a_string")
    try:
        received = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
        raise BadBase64 from exc
    if not hmac.compare_digest(received, _mac(timestamp, app_secret)):
        raise BadSignature


def signed_params(secret: str, *, now_ms: int | None = None) -> dict[str, str]:
    """``{"timestamp", "sign"}`` raw values, for an HTTP client that encodes query params itself."""
    timestamp = str(_now_ms() if now_ms is None else now_ms)
    return {"timestamp": timestamp, "sign": sign(timestamp, secret)}


def signed_query(secret: str, *, now_ms: int | None = None) -> str:
    """``timestamp=…&sign=…`` with the base64 percent-encoded (``+`` → ``%2B``, ``/``, ``=``)."""
    params = signed_params(secret, now_ms=now_ms)
    return f"timestamp={params['timestamp']}&sign={urllib.parse.quote(params['sign'], safe='')}"


def sign_url(url: str, secret: str, *, now_ms: int | None = None) -> str:
    """A robot webhook URL (``…/robot/send?access_token=…``) with the signature appended."""
    if url.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + separator + signed_query(secret, now_ms=now_ms)
