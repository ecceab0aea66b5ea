"""Replies to Feishu/Lark residents through the message API, with a cached tenant token.

``POST /open-apis/im/v1/messages?receive_id_type=open_id`` with ``Authorization: Bearer
<tenant_access_token>``; the token comes from ``auth/v3/tenant_access_token/internal``
(app id + secret, about 2 h) and is shared by every send through
``webhooks/tokens.py`` (one fetch however many sends ask at once, refreshed before expiry).
Each message carries ``uuid`` = the outbox row's ``msg_id`` (plus the part number): Feishu
drops a second message with the same uuid within an hour, so a send repeated after a
crash between sending and recording does not reach the resident twice.

Answers → ``SendResult`` (Feishu answers errors with HTTP 4xx and a JSON ``code``):
token refused (99991661/99991663–99991668/99991677) → refresh once and resend; rate limited
(HTTP 429 — 99991400 —, 99991402, 11020, 11021, 230020) → ``retry_after_s`` (the
``x-ogw-ratelimit-reset`` header when given); the bot may not reach this user any more
(230013) → gone; network, 5xx and internal errors → retried; anything else → permanent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from community.outbox import SendResult
from linli.settings import Settings
from storage.models import OutboxMessage
from webhooks.render import render_parts
from webhooks.tokens import AccessTokenCache, TokenError

__all__ = ["FeishuClient"]

log = logging.getLogger(__name__)
TEXT_LIMIT_BYTES = 4000
TOKEN_CODES = frozenset({99991661, 99991663, 99991664, 99991665, 99991666, 99991668, 99991677})
RATE_CODES = frozenset({99991402, 11020, 11021, 230020})  # and any HTTP 429 (99991400)
GONE_CODES = frozenset({230013})
TRANSIENT_CODES = frozenset({1500, 2200})  # "internal error": try again later
RATE_WAIT_S = 10.0


class FeishuClient:
    """One Feishu self-built app: tenant token, ``im/v1/messages``, code → outcome."""

    channel = "feishu"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        app_id: str,
        app_secret: str,
        api_url: str = "https://open.feishu.cn",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.app_id = app_id
        self._secret = app_secret
        self.api_url = api_url.rstrip("/")
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> FeishuClient:
        assert settings.feishu_enabled and settings.feishu_app_secret is not None
        return cls(
            http,
            app_id=settings.feishu_app_id,
            app_secret=settings.feishu_app_secret.get_secret_value(),
            api_url=settings.feishu_api_url,
        )

    async def _post(
        self,
        path: str,
        payload: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> tuple[int, dict[str, Any], httpx.Headers]:
        """(HTTP status, JSON object, headers); status 0 when nothing came back."""
        headers = {"content-type": "application/json; charset=utf-8"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            response = await self.http.post(
                self.api_url + path, content=body, headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            return 0, {"msg": type(exc).__name__}, httpx.Headers()
        try:
            data = response.json()
        except ValueError:
            data = None
        return response.status_code, data if isinstance(data, dict) else {}, response.headers

    async def _fetch_token(self) -> tuple[str, float]:
        payload = {"app_id": self.app_id, "app_secret": self._secret}
        status, data, _ = await self._post(
            "/open-apis/auth/v3/tenant_access_token/internal", payload
        )
        token, expire = data.get("tenant_access_token"), data.get("expire")
        if status != 200 or data.get("code") != 0 or not isinstance(token, str) or not token:
            code = data.get("code")
            raise TokenError(code if isinstance(code, int) else -1, str(data.get("msg", ""))[:200])
        return token, float(expire) if isinstance(expire, int | float) else 7200.0

    async def send(self, message: OutboxMessage) -> SendResult:
        """Outbox sender: text and numbered buttons, split to the size limit."""
        parts = render_parts(message.text or "", message.buttons or [], TEXT_LIMIT_BYTES)
        if not parts:
            return SendResult(ok=False, permanent=True, error="empty message")
        for index, part in enumerate(parts):
            uuid = message.msg_id if len(parts) == 1 else f"{message.msg_id}.{index}"
            outcome = await self.send_text(message.target, part, uuid=uuid[:50])
            if not outcome.ok:
                log.warning("feishu send failed: %s", outcome.error)
                return outcome
        return SendResult(ok=True)

    async def send_text(self, open_id: str, content: str, *, uuid: str | None = None) -> SendResult:
        payload: dict[str, Any] = {
            "receive_id": open_id,
            "msg_type": "text",
            "content": json.dumps({"text": content}, ensure_ascii=False),
        }
        if uuid:
            payload["uuid"] = uuid
        params = {"receive_id_type": "open_id"}
        for attempt in range(2):
            try:
                token = await self.tokens.get()
            except TokenError as exc:
                return SendResult(ok=False, error=f"token {exc.code}")
            status, data, headers = await self._post(
                "/open-apis/im/v1/messages", payload, params=params, token=token
            )
            if data.get("code") in TOKEN_CODES and attempt == 0:
                self.tokens.invalidate(token)
                continue
            return _result(status, data, headers)
        return SendResult(ok=False, error="token refused twice")  # pragma: no cover


def _wait(headers: httpx.Headers) -> float:
    for name in ("x-ogw-ratelimit-reset", "retry-after"):
        value = headers.get(name, "")
        if value.isdigit():
            return min(3600.0, max(1.0, float(value)))
    return RATE_WAIT_S


def _result(status: int, data: Mapping[str, Any], headers: httpx.Headers) -> SendResult:
    code = data.get("code")
    error = f"http {status} code {code} {str(data.get('msg', ''))[:160]}".strip()
    if status == 200 and code == 0:
        return SendResult(ok=True)
    if status == 429 or code in RATE_CODES:
        return SendResult(ok=False, retry_after_s=_wait(headers), error=error)
    if code in GONE_CODES:
        return SendResult(ok=False, gone=True, error=error)
    if status == 0 or status >= 500 or code in TRANSIENT_CODES or code in TOKEN_CODES:
        return SendResult(ok=False, error=error)
    return SendResult(ok=False, permanent=True, error=error)
