"""Active send for WeCom (``message/send``), and the token-authenticated client WeChat shares.

Both platforms answer HTTP 200 with ``{"errcode": …, "errmsg": …}``; the errcode decides what
the outbox does next (``SendResult``):

- token rejected (WeCom 40014/42001, WeChat 40001/40014/42001): invalidate the cached token,
  refresh once and send again (platforms.md §2.5, §3) — never more than once per message;
- rate limited (45009, …): ``retry_after_s``, so the outbox pauses that resident and retries;
- recipient unknown or not following any more: ``gone`` (the identity is marked unreachable);
- system busy (-1), HTTP/network errors, token fetch failures: transient, retried with backoff;
- anything else (bad content, no permission, …): permanent, kept with its errcode for staff.

Messages are JSON with UTF-8 Chinese (not ``\\u`` escapes), so the 2048-byte limit is measured
on what is actually sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from community.outbox import SendResult
from linli.settings import Settings
from storage.models import OutboxMessage
from webhooks.render import TEXT_LIMIT_BYTES, render_parts
from webhooks.tokens import AccessTokenCache, TokenError

__all__ = ["WecomClient", "WeixinClient"]

log = logging.getLogger(__name__)
TRANSPORT_ERROR = -1000  # our code for "no usable answer" (network, HTTP status, not JSON)


class WeixinClient:
    """What WeCom and WeChat share: a cached access token and errcode → SendResult."""

    channel: ClassVar[str]
    send_path: ClassVar[str]
    token_retry_codes: ClassVar[frozenset[int]]
    gone_codes: ClassVar[frozenset[int]]
    # errcode → seconds to wait before this resident's next message
    rate_codes: ClassVar[Mapping[int, float]]
    transient_codes: ClassVar[frozenset[int]] = frozenset({-1, TRANSPORT_ERROR})
    text_limit: ClassVar[int] = TEXT_LIMIT_BYTES

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)

    # ---- to be provided by each platform ---------------------------------------------------
    async def _fetch_token(self) -> tuple[str, float]:
        raise NotImplementedError

    def _text_payload(self, user: str, content: str) -> dict[str, Any]:
        raise NotImplementedError

    def _rejected_users(self, data: Mapping[str, Any]) -> set[str]:
        """Recipients a successful call nevertheless refused (WeCom's ``invaliduser``)."""
        return set()

    # ---- shared plumbing -------------------------------------------------------------------
    async def _get_token(self, path: str, params: Mapping[str, str]) -> tuple[str, float]:
        data = await self._request("GET", path, params=dict(params))
        code = _errcode(data)
        token = data.get("access_token")
        if code != 0 or not isinstance(token, str) or not token:
            raise TokenError(code if code != 0 else -1, str(data.get("errmsg", ""))[:200])
        expires_in = data.get("expires_in")
        return token, float(expires_in) if isinstance(expires_in, int | float) else 7200.0

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON answer, or ``{"errcode": TRANSPORT_ERROR}`` when there is none."""
        try:
            response = await self.http.request(method, self.api_url + path, **kwargs)
        except httpx.HTTPError as exc:
            return {"errcode": TRANSPORT_ERROR, "errmsg": type(exc).__name__}
        if response.status_code != 200:
            return {"errcode": TRANSPORT_ERROR, "errmsg": f"http {response.status_code}"}
        try:
            data = response.json()
        except ValueError:
            return {"errcode": TRANSPORT_ERROR, "errmsg": "not json"}
        return data if isinstance(data, dict) else {"errcode": TRANSPORT_ERROR, "errmsg": "shape"}

    async def call(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST with the current token; one refresh and one retry when the token was refused."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"content-type": "application/json; charset=utf-8"}
        for attempt in range(2):
            try:
                token = await self.tokens.get()
            except TokenError as exc:
                return {"errcode": TRANSPORT_ERROR, "errmsg": f"token {exc.code}"}
            data = await self._request(
                "POST", path, params={"access_token": token}, content=body, headers=headers
            )
            if _errcode(data) in self.token_retry_codes and attempt == 0:
                self.tokens.invalidate(token)
                continue
            return data
        return data  # pragma: no cover - the loop always returns

    def result(self, data: Mapping[str, Any], user: str) -> SendResult:
        """Map the platform's answer for a message to ``user`` onto the outbox's outcome."""
        code = _errcode(data)
        error = f"{code} {str(data.get('errmsg', ''))[:200]}".strip()
        if code == 0:
            if user in self._rejected_users(data):
                return SendResult(ok=False, gone=True, error="invaliduser")
            return SendResult(ok=True)
        if code in self.gone_codes:
            return SendResult(ok=False, gone=True, error=error)
        if code in self.rate_codes:
            return SendResult(ok=False, retry_after_s=self.rate_codes[code], error=error)
        if code in self.transient_codes or code in self.token_retry_codes:
            return SendResult(ok=False, error=error)
        return SendResult(ok=False, permanent=True, error=error)

    async def send_text(self, user: str, content: str) -> SendResult:
        """One text message (already within the byte limit) to one resident."""
        data = await self.call(self.send_path, self._text_payload(user, content))
        outcome = self.result(data, user)
        if not outcome.ok:
            log.warning("%s send failed: %s", self.channel, outcome.error)
        return outcome

    async def send(self, message: OutboxMessage) -> SendResult:
        """Outbox sender: the row's text and numbered buttons, split to the byte limit."""
        parts = render_parts(message.text or "", message.buttons or [], self.text_limit)
        if not parts:
            return SendResult(ok=False, permanent=True, error="empty message")
        for part in parts:
            outcome = await self.send_text(message.target, part)
            if not outcome.ok:
                return outcome
        return SendResult(ok=True)


class WecomClient(WeixinClient):
    """A WeCom self-built app (platforms.md §2.5): ``gettoken`` and ``message/send``."""

    channel = "wecom"
    send_path = "/cgi-bin/message/send"
    token_retry_codes = frozenset({40014, 42001})
    # 40003 invalid UserID, 60111 UserID not found, 81013 every recipient invalid.
    gone_codes = frozenset({40003, 60111, 81013})
    # 45009 API frequency limit, 45033 too many concurrent calls.
    rate_codes: ClassVar[Mapping[int, float]] = {45009: 60.0, 45033: 5.0}

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        corp_id: str,
        agent_id: int,
        secret: str,
        api_url: str = "https://qyapi.weixin.qq.com",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(http, api_url, clock=clock)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> WecomClient:
        assert settings.wecom_enabled and settings.wecom_secret is not None
        assert settings.wecom_agent_id is not None
        return cls(
            http,
            corp_id=settings.wecom_corp_id,
            agent_id=settings.wecom_agent_id,
            secret=settings.wecom_secret.get_secret_value(),
            api_url=settings.wecom_api_url,
        )

    async def _fetch_token(self) -> tuple[str, float]:
        params = {"corpid": self.corp_id, "corpsecret": self._secret}
        return await self._get_token("/cgi-bin/gettoken", params)

    def _text_payload(self, user: str, content: str) -> dict[str, Any]:
        # No enable_duplicate_check: it drops a second identical text within the interval,
        # and a resident asking for the menu twice must see it twice. The outbox already
        # guarantees one send per row.
        return {
            "touser": user,
            "msgtype": "text",
            "agentid": self.agent_id,
            "text": {"content": content},
        }

    def _rejected_users(self, data: Mapping[str, Any]) -> set[str]:
        invalid = data.get("invaliduser")
        return set(invalid.split("|")) if isinstance(invalid, str) and invalid else set()


def _errcode(data: Mapping[str, Any]) -> int:
    code = data.get("errcode", 0)
    return code if isinstance(code, int) and not isinstance(code, bool) else TRANSPORT_ERROR
