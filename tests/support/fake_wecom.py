"""A local fake of the WeCom and WeChat Official Account platforms, for tests.

Two halves, like the real platforms:

- ``FakeWeixin``: the HTTP APIs our senders call — WeCom ``cgi-bin/gettoken`` and
  ``cgi-bin/message/send``, WeChat ``cgi-bin/token`` and ``cgi-bin/message/custom/send`` —
  with tokens that expire (an injectable clock), errcodes shaped like the real ones
  (40014/42001/40001 for tokens, 81013/43004 for unknown or unfollowed users, 45009/45047
  for limits), forced failures, an optional per-user rate limit, and a record of every call.
  On WeChat a new token invalidates the previous one, as documented.
- ``WecomCallbacks`` / ``WechatCallbacks``: the platform's side of the callback URL: they
  build the XML of a resident's message, encrypt and sign it exactly as the platform does,
  and POST it to our app (plaintext mode, safe mode, and compatible mode for WeChat).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
from aiohttp import web

from webhooks.wecom.crypto import encrypt, parse_aes_key, sha1_signature
from webhooks.xmlsafe import build_xml

__all__ = ["FakeWeixin", "Sent", "WechatCallbacks", "WecomCallbacks", "fill_xml"]

TOKEN_LIFETIME_S = 7200


@dataclass(frozen=True, slots=True)
class Sent:
    api: str  # "wecom" | "wechat"
    user: str
    content: str


@dataclass(slots=True)
class _Token:
    api: str
    expires_at: float
    revoked: bool = False


class FakeWeixin:
    """The platforms' APIs on 127.0.0.1 (one server answers both, as their paths differ)."""

    def __init__(
        self,
        *,
        corp_id: str = "ww_test_corp",
        corp_secret: str = "wecom-secret",
        agent_id: int = 1000002,
        app_id: str = "wx_test_app",
        app_secret: str = "wechat-secret",
        clock: Callable[[], float] = time.monotonic,
        expires_in: int = TOKEN_LIFETIME_S,
    ) -> None:
        self.corp_id, self.corp_secret, self.agent_id = corp_id, corp_secret, agent_id
        self.app_id, self.app_secret = app_id, app_secret
        self.clock = clock
        self.expires_in = expires_in
        self.sent: list[Sent] = []
        self.token_calls: Counter[str] = Counter()
        self.calls: list[tuple[str, int]] = []  # (path, errcode answered)
        self.invalid_users: set[str] = set()  # WeCom 81013 / WeChat 43004
        self.rate_limit_per_min: int | None = None
        self._tokens: dict[str, _Token] = {}
        self._forced: list[list[Any]] = []  # [remaining, errcode, api | None]
        self._per_user: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self._changed = asyncio.Event()
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> Self:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._wecom_token)
        app.router.add_get("/cgi-bin/token", self._wechat_token)
        app.router.add_post("/cgi-bin/message/send", self._wecom_send)
        app.router.add_post("/cgi-bin/message/custom/send", self._wechat_send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- test controls ---------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every token issued so far is expired (42001), as after a platform-side reset."""
        for token in self._tokens.values():
            token.expires_at = float("-inf")

    def fail_next(self, errcode: int, times: int = 1, api: str | None = None) -> None:
        """Answer the next ``times`` sends (of ``api``, or any) with ``errcode``."""
        self._forced.append([times, errcode, api])

    def messages(self, user: str | None = None, api: str | None = None) -> list[str]:
        return [
            s.content
            for s in self.sent
            if (user is None or s.user == user) and (api is None or s.api == api)
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5) -> Any:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value

    # ---- tokens ----------------------------------------------------------------------------
    def _issue(self, api: str) -> web.Response:
        if api == "wechat":  # a new WeChat token replaces the previous ones
            for token in self._tokens.values():
                if token.api == "wechat":
                    token.revoked = True
        value = f"{api}-{next(self._serial)}-{secrets.token_hex(8)}"
        self._tokens[value] = _Token(api, self.clock() + self.expires_in)
        return self._json(
            {"errcode": 0, "errmsg": "ok", "access_token": value, "expires_in": self.expires_in}
        )

    async def _wecom_token(self, request: web.Request) -> web.Response:
        self.token_calls["wecom"] += 1  # every call, refused ones too
        q = request.query
        if q.get("corpid") != self.corp_id:
            return self._json({"errcode": 40013, "errmsg": "invalid corpid"})
        if q.get("corpsecret") != self.corp_secret:
            return self._json({"errcode": 40001, "errmsg": "invalid credential"})
        return self._issue("wecom")

    async def _wechat_token(self, request: web.Request) -> web.Response:
        self.token_calls["wechat"] += 1
        q = request.query
        if q.get("grant_type") != "client_credential":
            return self._json({"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.app_id:
            return self._json({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self.app_secret:
            return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
        return self._issue("wechat")

    def _token_error(self, request: web.Request, api: str) -> dict[str, Any] | None:
        value = request.query.get("access_token")
        if not value:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        token = self._tokens.get(value)
        if token is None or token.api != api or token.revoked:
            code = 40014 if api == "wecom" else 40001
            return {"errcode": code, "errmsg": "invalid access_token"}
        if self.clock() >= token.expires_at:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    # ---- sends -----------------------------------------------------------------------------
    async def _send(self, request: web.Request, api: str) -> web.Response:
        error = self._token_error(request, api)
        if error is None:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
            error = self._check(api, body)
        return self._answer(request.path, error or {"errcode": 0, "errmsg": "ok"})

    def _check(self, api: str, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict) or body.get("msgtype") != "text":
            return {"errcode": 40008, "errmsg": "invalid message type"}
        user, content = body.get("touser"), (body.get("text") or {}).get("content")
        if api == "wecom" and body.get("agentid") != self.agent_id:
            return {"errcode": 40056, "errmsg": "invalid agentid"}
        if not isinstance(content, str) or not content:
            return {"errcode": 44004, "errmsg": "empty content"}
        if len(content.encode("utf-8")) > 2048:
            return {"errcode": 45002, "errmsg": "content size out of limit"}
        for entry in self._forced:
            if entry[0] > 0 and entry[2] in (None, api):
                entry[0] -= 1
                return {"errcode": entry[1], "errmsg": "forced"}
        if user in self.invalid_users:
            if api == "wecom":
                return {"errcode": 81013, "errmsg": "user invalid", "invaliduser": user}
            return {"errcode": 43004, "errmsg": "require subscribe"}
        if self.rate_limit_per_min is not None:
            now = self.clock()
            stamps = [s for s in self._per_user[api, user] if s > now - 60]
            if len(stamps) >= self.rate_limit_per_min:
                self._per_user[api, user] = stamps
                return {"errcode": 45009 if api == "wecom" else 45047, "errmsg": "limit"}
            self._per_user[api, user] = [*stamps, now]
        self.sent.append(Sent(api, str(user), content))
        return None

    async def _wecom_send(self, request: web.Request) -> web.Response:
        return await self._send(request, "wecom")

    async def _wechat_send(self, request: web.Request) -> web.Response:
        return await self._send(request, "wechat")

    def _answer(self, path: str, payload: dict[str, Any]) -> web.Response:
        self.calls.append((path, payload["errcode"]))
        self._changed.set()
        return self._json(payload)

    @staticmethod
    def _json(payload: dict[str, Any]) -> web.Response:
        return web.json_response(payload, dumps=lambda v: json.dumps(v, ensure_ascii=False))


# ---- the platform calling our callback URL ---------------------------------------------------
_FIELD_RE = "<{tag}>(?:<!\\[CDATA\\[.*?\\]\\]>|[^<]*)</{tag}>"


def fill_xml(template: str, **fields: str | int) -> str:
    """A fixture with some fields replaced (text as CDATA, ints bare), formatting kept."""
    for tag, value in fields.items():
        body = str(value) if isinstance(value, int) else f"<![CDATA[{value}]]>"
        pattern = re.compile(_FIELD_RE.format(tag=tag), re.S)
        if not pattern.search(template):
            raise KeyError(f"fixture has no <{tag}>")
        template = pattern.sub(lambda _m, t=tag, b=body: f"<{t}>{b}</{t}>", template, count=1)
    return template


class _Signer:
    def __init__(self, token: str, aes_key: str | None, receive_id: str) -> None:
        self.token, self.receive_id = token, receive_id
        self.key = parse_aes_key(aes_key) if aes_key else None
        self._nonce = itertools.count(100000)

    def stamp(self) -> tuple[str, str]:
        return str(int(time.time())), str(next(self._nonce))

    def envelope(self, plaintext: str, to: str, receive_id: str | None = None) -> tuple[str, str]:
        """(Encrypt, envelope XML) of ``plaintext`` as the platform sends it."""
        assert self.key is not None
        encrypted = encrypt(self.key, plaintext, receive_id or self.receive_id)
        return encrypted, build_xml({"ToUserName": to, "Encrypt": encrypted})


class WecomCallbacks(_Signer):
    """WeCom posting a member's message to ``/webhooks/wecom`` (encrypted, signed)."""

    path = "/webhooks/wecom"

    def __init__(self, http: httpx.AsyncClient, token: str, aes_key: str, corp_id: str) -> None:
        super().__init__(token, aes_key, corp_id)
        self.http = http

    def signed(self, plaintext: str, **override: str) -> tuple[str, bytes]:
        """(query string, body) of a valid callback; ``override`` changes query values."""
        encrypted, body = self.envelope(plaintext, self.receive_id)
        ts, nonce = self.stamp()
        params = {
            "msg_signature": sha1_signature(self.token, ts, nonce, encrypted),
            "timestamp": ts,
            "nonce": nonce,
        } | override
        return urllib.parse.urlencode(params), body.encode()

    async def post(self, plaintext: str) -> httpx.Response:
        query, body = self.signed(plaintext)
        return await self.http.post(f"{self.path}?{query}", content=body)

    async def post_raw(self, query: str, body: bytes) -> httpx.Response:
        return await self.http.post(f"{self.path}?{query}", content=body)


class WechatCallbacks(_Signer):
    """WeChat posting a follower's message to ``/webhooks/wechat`` in the configured mode."""

    path = "/webhooks/wechat"

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        app_id: str,
        aes_key: str | None = None,
        *,
        compatible: bool = False,
    ) -> None:
        super().__init__(token, aes_key, app_id)
        self.http = http
        self.compatible = compatible

    def signed(
        self, plaintext: str, *, shown: str | None = None, **override: str
    ) -> tuple[str, bytes]:
        """(query, body); compatible mode shows ``shown`` (default: the same) beside Encrypt."""
        ts, nonce = self.stamp()
        params = {"signature": sha1_signature(self.token, ts, nonce), "timestamp": ts}
        params |= {"nonce": nonce, "openid": "ignored-by-us"}
        if self.key is None:
            return urllib.parse.urlencode(params | override), plaintext.encode()
        encrypted, body = self.envelope(plaintext, "gh_test")
        if self.compatible:  # plaintext fields beside Encrypt: ours must not trust them
            visible = plaintext if shown is None else shown
            body = visible.replace("</xml>", f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        params |= {
            "encrypt_type": "aes",
            "msg_signature": sha1_signature(self.token, ts, nonce, encrypted),
        }
        return urllib.parse.urlencode(params | override), body.encode()

    async def post(self, plaintext: str) -> httpx.Response:
        query, body = self.signed(plaintext)
        return await self.http.post(f"{self.path}?{query}", content=body)

    async def post_raw(self, query: str, body: bytes) -> httpx.Response:
        return await self.http.post(f"{self.path}?{query}", content=body)
