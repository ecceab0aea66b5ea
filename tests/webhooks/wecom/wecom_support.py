"""A running app with WeCom configured against the fake platform, and a resident who chats."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from storage.db import transaction
from storage.models import InboxEvent, OutboxMessage, Request
from tests.e2e.harness import client, make_settings, running_app
from tests.support.fake_wecom import FakeWeixin, WecomCallbacks, fill_xml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "ww_test_corp"
AGENT_ID = 1000002
_MSG_IDS = itertools.count(7362140912345700000)


def fixture(name: str, **fields: str | int) -> str:
    return fill_xml((FIXTURES / name).read_text("utf-8"), **fields)


def wecom_settings(database_url: str, data_dir: Path, api_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": AGENT_ID,
        "wecom_secret": "wecom-secret",
        "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY,
        "wecom_api_url": api_url,
    }
    return make_settings(database_url, data_dir, **(values | overrides))


@dataclass
class WecomWorld:
    app: Any
    http: httpx.AsyncClient
    fake: FakeWeixin
    platform: WecomCallbacks

    async def deliver(self) -> None:
        """Run the outbox once (the background worker is off in tests)."""
        await self.app.state.runtime.outbox.drain_once()


@asynccontextmanager
async def wecom_world(
    database_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[WecomWorld]:
    async with FakeWeixin(corp_id=CORP_ID, agent_id=AGENT_ID) as fake:
        settings = wecom_settings(database_url, data_dir, fake.base_url, **overrides)
        async with running_app(settings) as app, client(app) as http:
            yield WecomWorld(app, http, fake, WecomCallbacks(http, TOKEN, AES_KEY, CORP_ID))


class Member:
    """A WeCom member writing to the app; ``say`` returns the texts that reached them."""

    def __init__(self, world: WecomWorld, user_id: str) -> None:
        self.world = world
        self.user_id = user_id
        self.seen = 0

    async def send(self, name: str = "text_message.xml", **fields: str | int) -> httpx.Response:
        fields.setdefault("FromUserName", self.user_id)
        fields.setdefault("CreateTime", int(time.time()))
        if "MsgId" in (FIXTURES / name).read_text("utf-8"):
            fields.setdefault("MsgId", next(_MSG_IDS))
        return await self.world.platform.post(fixture(name, **fields))

    async def say(
        self, text: str | None = None, name: str = "text_message.xml", **fields: Any
    ) -> list[str]:
        if text is not None:
            fields["Content"] = text
        response = await self.send(name, **fields)
        assert response.status_code == 200, response.text
        assert response.text == ""  # acknowledged at once, never a passive reply
        return await self.received()

    async def received(self) -> list[str]:
        await self.world.deliver()
        texts = self.world.fake.messages(self.user_id, api="wecom")
        new, self.seen = texts[self.seen :], len(texts)
        return new


def option(texts: list[str], label: str) -> str:
    """The number to reply for ``label`` in the last message that offers it."""
    for text in reversed(texts):
        match = re.search(rf"^回复 (\d+)：{re.escape(label)}$", text, re.M)
        if match:
            return match.group(1)
    raise AssertionError(f"no option {label!r} in {texts!r}")


class AsgiCall:
    """One POST driven through the ASGI app by hand, to see the response before the
    background work that follows it (httpx's ASGI transport waits for both)."""

    def __init__(self, app: Any, path: str, query: str, body: bytes) -> None:
        self.answered = asyncio.Event()
        self.status: int | None = None
        self.body = b""
        self.answered_at = 0.0
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())],
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
                    self.answered_at = time.perf_counter()  # the moment a server writes it
                    self.answered.set()

        self._task = asyncio.create_task(app(scope, receive, send))

    @property
    def finished(self) -> bool:
        return self._task.done()

    async def done(self) -> None:
        await self._task


async def counts(app: Any) -> tuple[int, int, int]:
    """Rows in (inbox_events, requests, outbox)."""
    async with transaction(app.state.runtime.factory) as session:
        inbox = await session.scalar(select(func.count(InboxEvent.id)))
        requests = await session.scalar(select(func.count(Request.id)))
        outbox = await session.scalar(select(func.count(OutboxMessage.id)))
    return int(inbox or 0), int(requests or 0), int(outbox or 0)
