"""Replies to DingTalk residents: the conversation's sessionWebhook, else the robot send API.

Every robot callback carries a ``sessionWebhook`` valid until ``sessionWebhookExpiredTime``
(platforms.md §4.1): posting there needs no token and lands in that conversation. The view
remembers the newest one per resident (``SessionWebhooks``, in this process); the sender
uses it while it has at least ``SESSION_MARGIN_MS`` left. After that — a notice hours later,
a reply sent by another process, a restart, or ``300001`` "session 不存在" — the message goes
through the OpenAPI (``/v1.0/robot/oToMessages/batchSend`` with the app's access token,
cached by ``webhooks/tokens.py``), which reaches any member by staff id.

A sessionWebhook is only ever called on the configured DingTalk origin
(``dingtalk_oapi_url``): the callback is signed, but the URL is data, and we do not post
residents' words wherever a payload points.

Answers → ``SendResult``: token refused (HTTP 401 / ``InvalidAuthentication``) → refresh
once and resend; throttled (HTTP 429, ``Throttling…``, or the resident in
``flowControlledStaffIdList``) → ``retry_after_s``; the resident in ``invalidStaffIdList`` →
gone; network and 5xx → retried; anything else → permanent.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from community.outbox import SendResult
from linli.settings import Settings
from storage.models import OutboxMessage
from webhooks.render import render_parts
from webhooks.tokens import AccessTokenCache, TokenError

if TYPE_CHECKING:
    from linli.runtime import Runtime

__all__ = ["DingtalkClient", "SessionWebhooks", "client_for"]

log = logging.getLogger(__name__)
TEXT_LIMIT_BYTES = 4000  # per message; a longer reply is split at line ends
SESSION_MARGIN_MS = 60_000  # never start a send on a webhook with less than a minute left
RATE_WAIT_S = 60.0


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class SessionWebhooks:
    """The newest sessionWebhook of each resident, bounded (oldest forgotten first)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._hooks: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def remember(self, user: str, url: str, expires_ms: int) -> None:
        known = self._hooks.get(user)
        if known is not None and known[1] > expires_ms:
            return  # a late retry of an older callback: keep the newer session
        self._hooks[user] = (url, expires_ms)
        self._hooks.move_to_end(user)
        while len(self._hooks) > self.capacity:
            self._hooks.popitem(last=False)

    def usable(self, user: str, now_ms: int) -> str | None:
        known = self._hooks.get(user)
        if known is None:
            return None
        if known[1] - now_ms < SESSION_MARGIN_MS:
            del self._hooks[user]
            return None
        return known[0]

    def forget(self, user: str) -> None:
        self._hooks.pop(user, None)


class DingtalkClient:
    """One enterprise internal app's robot: session replies, OpenAPI fallback, token cache."""

    channel = "dingtalk"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        app_key: str,
        app_secret: str,
        api_url: str = "https://api.dingtalk.com",
        oapi_url: str = "https://oapi.dingtalk.com",
        robot_code: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.http = http
        self.app_key = app_key
        self._secret = app_secret
        self.api_url = api_url.rstrip("/")
        self.oapi_origin = _origin(oapi_url)
        self.robot_code = robot_code or app_key  # an app's robot: robotCode == AppKey
        self.now_ms = now_ms
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)
        self.sessions = SessionWebhooks()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> DingtalkClient:
        assert settings.dingtalk_enabled and settings.dingtalk_app_secret is not None
        return cls(
            http,
            app_key=settings.dingtalk_app_key,
            app_secret=settings.dingtalk_app_secret.get_secret_value(),
            api_url=settings.dingtalk_api_url,
            oapi_url=settings.dingtalk_oapi_url,
        )

    def remember_session(self, user: str, url: object, expires_ms: object) -> bool:
        """Keep a callback's sessionWebhook for replies; False when it is not usable."""
        if not isinstance(url, str) or not isinstance(expires_ms, int) or len(url) > 2048:
            return False
        if _origin(url) != self.oapi_origin:
            log.warning("dingtalk: sessionWebhook on an unexpected origin ignored")
            return False
        self.sessions.remember(user, url, expires_ms)
        return True

    # ---- HTTP ------------------------------------------------------------------------------
    async def _post(
        self, url: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        all_headers = {"content-type": "application/json; charset=utf-8", **(headers or {})}
        try:
            response = await self.http.post(url, content=body, headers=all_headers)
        except httpx.HTTPError as exc:
            return 0, {"message": type(exc).__name__}
        try:
            data = response.json()
        except ValueError:
            data = None
        return response.status_code, data if isinstance(data, dict) else {}

    async def _fetch_token(self) -> tuple[str, float]:
        payload = {"appKey": self.app_key, "appSecret": self._secret}
        status, data = await self._post(f"{self.api_url}/v1.0/oauth2/accessToken", payload)
        token, expires = data.get("accessToken"), data.get("expireIn")
        if status != 200 or not isinstance(token, str) or not token:
            raise TokenError(status or -1, str(data.get("code") or data.get("message", ""))[:200])
        return token, float(expires) if isinstance(expires, int | float) else 7200.0

    # ---- sending ---------------------------------------------------------------------------
    async def send(self, message: OutboxMessage) -> SendResult:
        """Outbox sender: text and numbered buttons, split to the size limit."""
        parts = render_parts(message.text or "", message.buttons or [], TEXT_LIMIT_BYTES)
        if not parts:
            return SendResult(ok=False, permanent=True, error="empty message")
        for part in parts:
            outcome = await self.send_text(message.target, part)
            if not outcome.ok:
                log.warning("dingtalk send failed: %s", outcome.error)
                return outcome
        return SendResult(ok=True)

    async def send_text(self, user: str, content: str) -> SendResult:
        url = self.sessions.usable(user, self.now_ms())
        if url is not None:
            outcome = await self._via_session(user, url, content)
            if outcome is not None:
                return outcome
        return await self._via_api(user, content)

    async def _via_session(self, user: str, url: str, content: str) -> SendResult | None:
        """The reply through the conversation's webhook; None: use the API instead."""
        status, data = await self._post(url, {"msgtype": "text", "text": {"content": content}})
        code = data.get("errcode")
        if status == 200 and code == 0:
            return SendResult(ok=True)
        if code in (130101, 410100):  # sending too fast in this conversation
            return SendResult(ok=False, retry_after_s=RATE_WAIT_S, error=f"session {code}")
        self.sessions.forget(user)  # expired (300001) or refused: the API still reaches them
        return None

    async def _via_api(self, user: str, content: str) -> SendResult:
        payload = {
            "robotCode": self.robot_code,
            "userIds": [user],
            "msgKey": "sampleText",
            "msgParam": json.dumps({"content": content}, ensure_ascii=False),
        }
        url = f"{self.api_url}/v1.0/robot/oToMessages/batchSend"
        for attempt in range(2):
            try:
                token = await self.tokens.get()
            except TokenError as exc:
                return SendResult(ok=False, error=f"token {exc.code}")
            status, data = await self._post(url, payload, {"x-acs-dingtalk-access-token": token})
            code = str(data.get("code") or "")
            if (status == 401 or code == "InvalidAuthentication") and attempt == 0:
                self.tokens.invalidate(token)
                continue
            return _api_result(status, code, data, user)
        return SendResult(ok=False, error="token refused twice")  # pragma: no cover


def _api_result(status: int, code: str, data: Mapping[str, Any], user: str) -> SendResult:
    error = f"http {status} {code} {str(data.get('message', ''))[:160]}".strip()
    if status == 200:
        if user in (data.get("invalidStaffIdList") or []):
            return SendResult(ok=False, gone=True, error="invalidStaffIdList")
        if user in (data.get("flowControlledStaffIdList") or []):
            return SendResult(ok=False, retry_after_s=RATE_WAIT_S, error="flowControlled")
        return SendResult(ok=True)
    if status == 429 or code.startswith("Throttling") or "QpsLimit" in code:
        return SendResult(ok=False, retry_after_s=RATE_WAIT_S, error=error)
    if status == 0 or status >= 500 or status == 401:
        return SendResult(ok=False, error=error)
    return SendResult(ok=False, permanent=True, error=error)


_CLIENTS: weakref.WeakKeyDictionary[Runtime, DingtalkClient] = weakref.WeakKeyDictionary()


def client_for(runtime: Runtime) -> DingtalkClient:
    """The one client of this runtime: its sender and its view share the session webhooks."""
    client = _CLIENTS.get(runtime)
    if client is None:
        client = _CLIENTS[runtime] = DingtalkClient.from_settings(runtime.settings, runtime.http)
    return client
