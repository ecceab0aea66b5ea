"""Outbound pushes to a generic-channel bridge (interfaces.md §2, "Outbound push").

One attempt per call: the durable outbox owns retries and their schedule, so a crash between
attempts loses nothing. This module only signs, sends, and says what the answer means.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from webhooks.generic.crypto import make_headers

__all__ = ["MAX_RETRY_AFTER_S", "PushClient", "PushResult", "backoff_seconds"]

BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 3600.0
# A bridge may ask for a pause, but not park a message for days by accident.
MAX_RETRY_AFTER_S = 24 * 3600.0
# 4xx answers that mean "try again later" rather than "this request is wrong".
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class PushResult:
    """The meaning of one push attempt, for the outbox to act on."""

    ok: bool = False
    gone: bool = False  # 410: stop pushing to this user
    permanent: bool = False  # retrying the same request cannot succeed
    retry_after_s: float | None = None  # the bridge's own Retry-After, when it sent one
    status: int | None = None  # None when no HTTP answer arrived
    error: str | None = None  # short text for logs: exception class or "HTTP 500"

    @property
    def should_retry(self) -> bool:
        """True for transient failures (5xx, 408/409/425/429, timeouts, connection errors)."""
        return not (self.ok or self.gone or self.permanent)


def backoff_seconds(attempt: int, *, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, jittered, capped at 1 h.

    "Equal jitter" (half fixed, half random) spreads retries of many messages without ever
    collapsing to a near-zero delay, which full jitter would allow.
    """
    exponent = min(max(attempt, 1) - 1, 32)  # bounded so huge attempt counts cannot overflow
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0**exponent)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or junk."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is junk but harmless
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def classify_status(status: int, retry_after: str | None = None) -> PushResult:
    """Map an HTTP status (and Retry-After) to a PushResult."""
    if 200 <= status < 300:
        return PushResult(ok=True, status=status)
    error = f"HTTP {status}"
    if status == 410:
        return PushResult(gone=True, status=status, error=error)
    delay = parse_retry_after(retry_after) if status in _RETRY_AFTER_STATUSES else None
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return PushResult(permanent=True, status=status, error=error)
    # 5xx, the retryable 4xx, and anything odd (1xx/3xx: httpx does not follow redirects).
    return PushResult(retry_after_s=delay, status=status, error=error)


def encode_payload(payload: dict[str, Any]) -> bytes:
    """JSON as UTF-8 with Chinese kept readable; these exact bytes are what gets signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class PushClient:
    """Signs and POSTs pushes over one shared ``httpx.AsyncClient`` (connection reuse)."""

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        *,
        timeout: httpx.Timeout | float = _DEFAULT_TIMEOUT,
        user_agent: str = "Linli-Push/1",
    ) -> None:
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._user_agent = user_agent

    async def push(self, url: str, secret: str, payload: dict[str, Any], msg_id: str) -> PushResult:
        """Send one signed attempt; ``msg_id`` must be the same on every retry of a message."""
        body = encode_payload(payload)
        headers = make_headers(secret, body, msg_id=msg_id)  # fresh timestamp per attempt
        headers["content-type"] = "application/json; charset=utf-8"
        headers["user-agent"] = self._user_agent
        try:
            # stream(): the status and headers are all we need; a huge error page is never read.
            async with self._http.stream("POST", url, content=body, headers=headers) as response:
                return classify_status(response.status_code, response.headers.get("retry-after"))
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # A misconfigured push_url: no retry will fix it.
            return PushResult(permanent=True, error=type(exc).__name__)
        except httpx.HTTPError as exc:  # timeouts, refused/reset connections, protocol errors
            return PushResult(error=type(exc).__name__)

    async def aclose(self) -> None:
        """Close the HTTP client if this PushClient created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
