"""A running app with DingTalk configured against the fake platform, and a member who chats."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import client, make_settings, running_app
from tests.support.fake_dingtalk import DingtalkCallbacks, FakeDingtalk

FIXTURES = Path(__file__).resolve().parent / "fixtures"
APP_KEY = "ding_test_app"
APP_SECRET = "dingtalk-app-secret"
PUBLIC_URL = "https://linli.example.org"
_MSG_IDS = itertools.count(1)


def fixture(name: str, **fields: Any) -> dict[str, Any]:
    """A fixture with top-level fields replaced; ``text`` sets ``text.content``."""
    data = json.loads((FIXTURES / name).read_text("utf-8"))
    if "text" in fields:
        data["text"] = {"content": fields.pop("text")}
    data.update(fields)
    return copy.deepcopy(data)


def dingtalk_settings(database_url: str, data_dir: Path, fake_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "dingtalk_app_key": APP_KEY,
        "dingtalk_app_secret": APP_SECRET,
        "dingtalk_api_url": fake_url,
        "dingtalk_oapi_url": fake_url,
        "public_url": PUBLIC_URL,
    }
    return make_settings(database_url, data_dir, **(values | overrides))


@dataclass
class DingtalkWorld:
    app: Any
    http: httpx.AsyncClient
    fake: FakeDingtalk
    platform: DingtalkCallbacks

    async def deliver(self) -> None:
        """Run the outbox once (the background worker is off in tests)."""
        await self.app.state.runtime.outbox.drain_once()


@asynccontextmanager
async def dingtalk_world(
    database_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[DingtalkWorld]:
    async with FakeDingtalk(app_key=APP_KEY, app_secret=APP_SECRET) as fake:
        settings = dingtalk_settings(database_url, data_dir, fake.base_url, **overrides)
        async with running_app(settings) as app, client(app) as http:
            yield DingtalkWorld(app, http, fake, DingtalkCallbacks(http, APP_SECRET))


class Member:
    """A member writing to the robot one to one; ``say`` returns the texts that reached them."""

    def __init__(self, world: DingtalkWorld, staff_id: str, *, session_ttl_s: float = 5400) -> None:
        self.world = world
        self.staff_id = staff_id
        self.session_ttl_s = session_ttl_s
        self.seen = 0

    def payload(self, name: str = "text_message.json", **fields: Any) -> dict[str, Any]:
        url, expires_ms = self.world.fake.session_webhook(self.staff_id, self.session_ttl_s)
        fields.setdefault("senderStaffId", self.staff_id)
        fields.setdefault("msgId", f"msg{next(_MSG_IDS):08d}+Zr7YpU8kLmN0==")
        fields.setdefault("createAt", int(time.time() * 1000))
        fields.setdefault("sessionWebhook", url)
        fields.setdefault("sessionWebhookExpiredTime", expires_ms)
        return fixture(name, **fields)

    async def send(self, name: str = "text_message.json", **fields: Any) -> httpx.Response:
        return await self.world.platform.post(self.payload(name, **fields))

    async def say(
        self, text: str | None = None, name: str = "text_message.json", **fields: Any
    ) -> list[str]:
        if text is not None:
            fields["text"] = text
        response = await self.send(name, **fields)
        assert response.status_code == 200, response.text
        assert response.json() == {}  # acknowledged at once, never a synchronous reply
        return await self.received()

    async def received(self) -> list[str]:
        await self.world.deliver()
        fake = self.world.fake
        texts = [s.content for s in fake.sent if s.target == self.staff_id and s.via != "robot"]
        new, self.seen = texts[self.seen :], len(texts)
        return new


class AsgiCall:
    """One POST driven through the ASGI app by hand, to see the response before the
    background work that follows it (httpx's ASGI transport waits for both)."""

    def __init__(self, app: Any, path: str, body: bytes, headers: dict[str, str]) -> None:
        self.answered = asyncio.Event()
        self.status: int | None = None
        self.body = b""
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw += [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": raw,
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.body += message.get("body", b"")
                if not message.get("more_body"):
                    self.answered.set()

        self._task = asyncio.create_task(app(scope, receive, send))

    @property
    def finished(self) -> bool:
        return self._task.done()

    async def done(self) -> None:
        await self._task
