"""A local fake of Feishu/Lark, for tests: the APIs our senders call and the event pushes.

``FakeFeishu`` serves on 127.0.0.1:

- ``POST /open-apis/auth/v3/tenant_access_token/internal`` (app id + secret → a token for
  ``expires_in`` seconds of the injected clock; ``token_calls`` counts every call);
- ``POST /open-apis/im/v1/messages?receive_id_type=open_id`` (``Authorization: Bearer``
  checked: 99991663 unknown, 99991677 expired — HTTP 400 like Feishu; users in
  ``unreachable`` → 230013; ``uuid`` deduplicated: a repeated uuid is answered ok and not
  delivered twice; ``fail_next`` forces an answer);
- ``POST /open-apis/bot/v2/hook/<id>``: custom bots registered with ``add_bot``; unknown hook
  → 19001, a bot with a secret checks ``timestamp``/``sign`` (computed here from
  platforms.md §5.2, key = "timestamp\\nsecret", empty message) → 19021, and the bot limits
  **100 per minute and 5 per second**: past them ``{"code": 9499, "msg": "too many request"}``.

``FeishuCallbacks`` is Feishu pushing events to our ``/webhooks/feishu``: schema 2.0 envelopes
with our verification token, encrypted with the Encrypt Key and signed (``X-Lark-*``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web

from tests.support.fake_dingtalk import LocalServer, Sent
from webhooks.feishu.crypto import encrypt

__all__ = ["FakeFeishu", "FeishuCallbacks", "Sent"]

BOT_PER_MIN, BOT_PER_S = 100, 5


def _bot_sign(timestamp: str, secret: str) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class FakeFeishu(LocalServer):
    def __init__(
        self,
        *,
        app_id: str = "cli_test_app",
        app_secret: str = "feishu-app-secret",
        clock: Callable[[], float] = time.time,
        expires_in: int = 7200,
    ) -> None:
        super().__init__()
        self.app_id, self.app_secret = app_id, app_secret
        self.clock = clock
        self.expires_in = expires_in
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, int]] = []
        self.token_calls = 0
        self.unreachable: set[str] = set()
        self.bots: dict[str, str | None] = {}
        self._tokens: dict[str, float] = {}
        self._uuids: set[str] = set()
        self._forced: list[tuple[int, int]] = []  # (HTTP status, code)
        self._bot_sends: defaultdict[str, list[float]] = defaultdict(list)
        self._serial = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_post("/open-apis/im/v1/messages", self._message)
        app.router.add_post("/open-apis/bot/v2/hook/{hook}", self._bot)

    # ---- test controls ---------------------------------------------------------------------
    def add_bot(self, hook: str, secret: str | None = None) -> None:
        self.bots[hook] = secret

    def expire_tokens(self) -> None:
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    def fail_next(self, code: int, status: int = 400) -> None:
        self._forced.append((status, code))

    def messages(self, target: str | None = None, via: str | None = None) -> list[str]:
        return [
            s.content
            for s in self.sent
            if (target is None or s.target == target) and (via is None or s.via == via)
        ]

    def _answer(self, path: str, code: int, payload: dict[str, Any], status: int = 200) -> Any:
        self.calls.append((path, code))
        self.changed()
        return self.json({"code": code} | payload, status)

    # ---- app APIs --------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        body = await request.json()
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            return self.json({"code": 10014, "msg": "app secret invalid"}, 400)
        value = f"t-{next(self._serial)}-{secrets.token_hex(6)}"
        self._tokens[value] = self.clock() + self.expires_in
        return self.json(
            {"code": 0, "msg": "ok", "tenant_access_token": value, "expire": self.expires_in}
        )

    async def _message(self, request: web.Request) -> web.Response:
        path = request.path
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if token not in self._tokens:
            return self._answer(path, 99991663, {"msg": "Invalid access token"}, 400)
        if self._tokens[token] <= self.clock():
            return self._answer(path, 99991677, {"msg": "Authentication token expired"}, 400)
        if request.query.get("receive_id_type") != "open_id":
            return self._answer(path, 99992402, {"msg": "field validation failed"}, 400)
        if self._forced:
            status, code = self._forced.pop(0)
            return self._answer(path, code, {"msg": "forced"}, status)
        body = await request.json()
        user = str(body.get("receive_id", ""))
        if body.get("msg_type") != "text":
            return self._answer(path, 230001, {"msg": "invalid message content"}, 400)
        if user in self.unreachable:
            return self._answer(path, 230013, {"msg": "Bot has NO availability to this user"}, 400)
        uuid = body.get("uuid")
        if uuid not in self._uuids:
            if uuid:
                self._uuids.add(uuid)
            content = json.loads(body.get("content") or "{}").get("text", "")
            self.sent.append(Sent("api", user, content, body))
        return self._answer(path, 0, {"msg": "success", "data": {"message_id": "om_x"}})

    # ---- custom bots ---------------------------------------------------------------------------
    def _bot_error(self, hook: str, body: dict[str, Any]) -> tuple[int, str] | None:
        if hook not in self.bots:
            return 19001, "param invalid: incoming webhook access token invalid"
        secret = self.bots[hook]
        if secret is not None:
            stamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            if not stamp.isdigit() or abs(int(stamp) - self.clock()) > 3600:
                return (
                    19021,
                    "sign match fail or timestamp is not within one hour from current time",
                )
            if not hmac.compare_digest(_bot_sign(stamp, secret), sign):
                return (
                    19021,
                    "sign match fail or timestamp is not within one hour from current time",
                )
        now = self.clock()
        stamps = [s for s in self._bot_sends[hook] if s > now - 60]
        if len(stamps) >= BOT_PER_MIN or sum(s > now - 1 for s in stamps) >= BOT_PER_S:
            self._bot_sends[hook] = stamps
            return 9499, "too many request"
        self._bot_sends[hook] = [*stamps, now]
        return None

    async def _bot(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        body = await request.json()
        error = self._bot_error(hook, body)
        if error is not None:
            return self._answer(request.path, error[0], {"msg": error[1], "data": {}})
        self.sent.append(Sent("bot", hook, _bot_text(body), body))
        return self._answer(request.path, 0, {"msg": "success", "data": {}})


def _bot_text(body: dict[str, Any]) -> str:
    """What the group sees, as text: a ``post``'s title and lines, or a ``text``."""
    content = body.get("content") or {}
    if body.get("msg_type") == "text":
        return str(content.get("text", ""))
    post = (content.get("post") or {}).get("zh_cn") or {}
    lines = [str(post.get("title", ""))]
    for paragraph in post.get("content") or []:
        lines.append("".join(str(e.get("text", "")) for e in paragraph))
    return "\n".join(lines)


class FeishuCallbacks:
    """Feishu pushing events to ``/webhooks/feishu`` (encrypted and signed when keyed)."""

    path = "/webhooks/feishu"

    def __init__(
        self, http: httpx.AsyncClient, verification_token: str, encrypt_key: str | None
    ) -> None:
        self.http = http
        self.token = verification_token
        self.encrypt_key = encrypt_key
        self._nonce = itertools.count(1)

    def envelope(self, event_type: str, event: dict[str, Any], event_id: str) -> dict[str, Any]:
        """A schema 2.0 event with our token, as Feishu builds it."""
        header = {
            "event_id": event_id,
            "event_type": event_type,
            "create_time": str(int(time.time() * 1000)),
            "token": self.token,
            "app_id": "cli_test_app",
            "tenant_key": "tenant_test",
        }
        return {"schema": "2.0", "header": header, "event": event}

    def body(self, plaintext: str) -> bytes:
        if self.encrypt_key is None:
            return plaintext.encode()
        return json.dumps({"encrypt": encrypt(self.encrypt_key, plaintext)}).encode()

    def headers(self, body: bytes, **override: str) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.encrypt_key is not None:
            stamp, nonce = str(int(time.time())), f"nonce-{next(self._nonce)}"
            digest = hashlib.sha256((stamp + nonce + self.encrypt_key).encode() + body)
            headers |= {
                "X-Lark-Request-Timestamp": stamp,
                "X-Lark-Request-Nonce": nonce,
                "X-Lark-Signature": digest.hexdigest(),
            }
        return headers | override

    async def post(self, payload: dict[str, Any], *, signed: bool = True) -> httpx.Response:
        body = self.body(json.dumps(payload, ensure_ascii=False))
        headers = self.headers(body) if signed else {"content-type": "application/json"}
        return await self.post_raw(body, headers)

    async def post_raw(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.path, content=body, headers=headers)
