"""A local fake of DingTalk, for tests: the APIs our senders call and the robot's callbacks.

``FakeDingtalk`` serves, on 127.0.0.1 (one server for both hosts, as their paths differ):

- ``POST /v1.0/oauth2/accessToken`` (appKey + appSecret → accessToken, 7200 s, clock injected)
  and ``POST /v1.0/robot/oToMessages/batchSend`` (``x-acs-dingtalk-access-token`` checked:
  HTTP 401 ``InvalidAuthentication`` when unknown or expired; unknown staff ids answered in
  ``invalidStaffIdList``);
- ``POST /robot/sendBySession?session=…``: the sessionWebhooks it hands out with
  ``session_webhook()``; past their expiry → ``errcode 300001`` "session 不存在";
- ``POST /robot/send?access_token=…[&timestamp=…&sign=…]``: custom group robots registered
  with ``add_robot``; unknown token → 300001, a robot with a secret checks the signature
  (computed here independently from platforms.md §4.3) and the 1-hour window → 310000,
  and **20 messages per minute per robot**: the 21st is refused with ``660026`` and the
  robot is muted for 10 minutes, as DingTalk does.

Every accepted message is recorded in ``sent``. ``DingtalkCallbacks`` is the platform calling
our ``/webhooks/dingtalk`` with the ``timestamp``/``sign`` headers of the app secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
from aiohttp import web

__all__ = ["DingtalkCallbacks", "FakeDingtalk", "LocalServer", "Sent", "dingtalk_headers"]

ROBOT_LIMIT_PER_MIN = 20
ROBOT_MUTE_S = 600


@dataclass(frozen=True, slots=True)
class Sent:
    via: str  # "session" | "api" | "robot"
    target: str  # resident (staff id) or robot access token
    content: str
    payload: dict[str, Any]


class LocalServer:
    """An aiohttp app on a free local port, with a "something changed" event for waiting."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.base_url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
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

    def changed(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5) -> Any:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value

    @staticmethod
    def json(payload: dict[str, Any], status: int = 200) -> web.Response:
        return web.json_response(
            payload, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False)
        )


def _sign(timestamp_ms: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class FakeDingtalk(LocalServer):
    def __init__(
        self,
        *,
        app_key: str = "ding_test_app",
        app_secret: str = "dingtalk-app-secret",
        clock: Callable[[], float] = time.time,
        expires_in: int = 7200,
    ) -> None:
        super().__init__()
        self.app_key, self.app_secret = app_key, app_secret
        self.clock = clock  # seconds since the epoch (tokens, sessions, robot windows)
        self.expires_in = expires_in
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, int | str]] = []  # (path, errcode/code answered)
        self.token_calls = 0
        self.known_staff: set[str] | None = None  # None: every staff id exists
        self.robots: dict[str, str | None] = {}
        self._tokens: dict[str, float] = {}
        self._sessions: dict[str, tuple[str, int]] = {}
        self._robot_sends: defaultdict[str, list[float]] = defaultdict(list)
        self._muted_until: dict[str, float] = {}
        self._serial = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1.0/oauth2/accessToken", self._token)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        app.router.add_post("/robot/sendBySession", self._session_send)
        app.router.add_post("/robot/send", self._robot_send)

    # ---- test controls ---------------------------------------------------------------------
    def session_webhook(self, user: str, ttl_s: float = 5400) -> tuple[str, int]:
        """(sessionWebhook, sessionWebhookExpiredTime in ms) for a callback from ``user``."""
        session = secrets.token_hex(12)
        expires_ms = int((self.clock() + ttl_s) * 1000)
        self._sessions[session] = (user, expires_ms)
        return f"{self.base_url}/robot/sendBySession?session={session}", expires_ms

    def expire_sessions(self) -> None:
        """Every sessionWebhook handed out so far has expired (DingTalk answers 300001)."""
        self._sessions = {k: (user, 0) for k, (user, _) in self._sessions.items()}

    def add_robot(self, token: str, secret: str | None = None) -> None:
        self.robots[token] = secret

    def expire_tokens(self) -> None:
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    def messages(self, target: str | None = None, via: str | None = None) -> list[str]:
        return [
            s.content
            for s in self.sent
            if (target is None or s.target == target) and (via is None or s.via == via)
        ]

    def answered(self, path: str) -> Counter[int | str]:
        return Counter(code for p, code in self.calls if p == path)

    def _answer(
        self, path: str, code: int | str, payload: dict[str, Any], status: int = 200
    ) -> web.Response:
        self.calls.append((path, code))
        self.changed()
        return self.json(payload, status)

    # ---- OpenAPI ---------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        body = await request.json()
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return self.json({"code": "invalidClientIdOrSecret", "message": "无效的凭证"}, 400)
        value = f"dt-{next(self._serial)}-{secrets.token_hex(6)}"
        self._tokens[value] = self.clock() + self.expires_in
        return self.json({"accessToken": value, "expireIn": self.expires_in})

    async def _batch_send(self, request: web.Request) -> web.Response:
        path = request.path
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        if self._tokens.get(token, float("-inf")) <= self.clock():
            problem = {"code": "InvalidAuthentication", "message": "不合法的access_token"}
            return self._answer(path, "InvalidAuthentication", problem, 401)
        body = await request.json()
        if body.get("robotCode") != self.app_key or body.get("msgKey") != "sampleText":
            return self._answer(path, "invalidParameter", {"code": "invalidParameter"}, 400)
        content = json.loads(body.get("msgParam") or "{}").get("content", "")
        users = [str(u) for u in body.get("userIds", [])]
        known = self.known_staff
        invalid = [u for u in users if known is not None and u not in known]
        for user in users:
            if user not in invalid:
                self.sent.append(Sent("api", user, content, body))
        answer = {"processQueryKey": secrets.token_hex(8), "invalidStaffIdList": invalid}
        return self._answer(path, 0, answer | {"flowControlledStaffIdList": []})

    async def _session_send(self, request: web.Request) -> web.Response:
        session = self._sessions.get(request.query.get("session", ""))
        if session is None or session[1] <= self.clock() * 1000:
            return self._answer(
                request.path, 300001, {"errcode": 300001, "errmsg": "session 不存在"}
            )
        body = await request.json()
        self.sent.append(Sent("session", session[0], _content(body), body))
        return self._answer(request.path, 0, {"errcode": 0, "errmsg": "ok"})

    # ---- custom group robots -----------------------------------------------------------------
    def _robot_error(self, request: web.Request) -> tuple[int, str] | None:
        token = request.query.get("access_token", "")
        if token not in self.robots:
            return 300001, "token is not exist"
        secret = self.robots[token]
        if secret is not None:
            stamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not stamp.isdigit() or abs(int(stamp) - self.clock() * 1000) > 3_600_000:
                return 310000, "timestamp is invalid"
            if not hmac.compare_digest(_sign(stamp, secret), sign):
                return 310000, "sign not match"
        now = self.clock()
        if self._muted_until.get(token, 0) > now:
            return 660026, "send too fast, robot is blocked for 10 minutes"
        stamps = [s for s in self._robot_sends[token] if s > now - 60]
        if len(stamps) >= ROBOT_LIMIT_PER_MIN:
            self._muted_until[token] = now + ROBOT_MUTE_S
            return 660026, "send too fast, exceed 20 times per minute"
        self._robot_sends[token] = [*stamps, now]
        return None

    async def _robot_send(self, request: web.Request) -> web.Response:
        error = self._robot_error(request)
        if error is not None:
            return self._answer(request.path, error[0], {"errcode": error[0], "errmsg": error[1]})
        body = await request.json()
        token = request.query["access_token"]
        self.sent.append(Sent("robot", token, _content(body), body))
        return self._answer(request.path, 0, {"errcode": 0, "errmsg": "ok"})


def _content(body: dict[str, Any]) -> str:
    if body.get("msgtype") == "markdown":
        return str(body.get("markdown", {}).get("text", ""))
    return str(body.get("text", {}).get("content", ""))


def dingtalk_headers(app_secret: str, now_ms: int | None = None) -> dict[str, str]:
    """The ``timestamp`` and ``sign`` headers DingTalk puts on a callback."""
    stamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    return {
        "timestamp": stamp,
        "sign": _sign(stamp, app_secret),
        "content-type": "application/json",
    }


class DingtalkCallbacks:
    """DingTalk posting a robot message to ``/webhooks/dingtalk`` (signed headers)."""

    path = "/webhooks/dingtalk"

    def __init__(self, http: httpx.AsyncClient, app_secret: str) -> None:
        self.http = http
        self.app_secret = app_secret

    async def post(self, payload: dict[str, Any], **headers: str) -> httpx.Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        return await self.post_raw(body, dingtalk_headers(self.app_secret) | headers)

    async def post_raw(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.path, content=body, headers=headers)
