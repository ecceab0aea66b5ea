"""A running app with Feishu configured against the fake platform, and a user who chats."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import client, make_settings, running_app
from tests.support.fake_feishu import FakeFeishu, FeishuCallbacks

FIXTURES = Path(__file__).resolve().parent / "fixtures"
APP_ID = "cli_test_app"
APP_SECRET = "feishu-app-secret"
VERIFICATION_TOKEN = "v_test_token"
ENCRYPT_KEY = "linli-encrypt-key"
PUBLIC_URL = "https://linli.example.org"
_IDS = itertools.count(1)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text("utf-8"))


def message_event(
    name: str = "text_message.json",
    *,
    open_id: str | None = None,
    text: str | None = None,
    message_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A message fixture with a new event id and message id (unless given)."""
    data = fixture(name)
    serial = next(_IDS)
    data["header"]["event_id"] = event_id or f"ev{serial:030d}"
    message = data["event"]["message"]
    message["message_id"] = message_id or f"om_{serial:032x}"
    if open_id is not None:
        data["event"]["sender"]["sender_id"]["open_id"] = open_id
    if text is not None:
        message["content"] = json.dumps({"text": text}, ensure_ascii=False)
    return data


def feishu_settings(
    database_url: str, data_dir: Path, fake_url: str, *, encrypted: bool, **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "feishu_app_id": APP_ID,
        "feishu_app_secret": APP_SECRET,
        "feishu_verification_token": VERIFICATION_TOKEN,
        "feishu_encrypt_key": ENCRYPT_KEY if encrypted else None,
        "feishu_api_url": fake_url,
        "public_url": PUBLIC_URL,
    }
    return make_settings(database_url, data_dir, **(values | overrides))


@dataclass
class FeishuWorld:
    app: Any
    http: httpx.AsyncClient
    fake: FakeFeishu
    platform: FeishuCallbacks

    async def deliver(self) -> None:
        await self.app.state.runtime.outbox.drain_once()


@asynccontextmanager
async def feishu_world(
    database_url: str, data_dir: Path, *, encrypted: bool = True, **overrides: Any
) -> AsyncIterator[FeishuWorld]:
    async with FakeFeishu(app_id=APP_ID, app_secret=APP_SECRET) as fake:
        settings = feishu_settings(
            database_url, data_dir, fake.base_url, encrypted=encrypted, **overrides
        )
        async with running_app(settings) as app, client(app) as http:
            key = ENCRYPT_KEY if encrypted else None
            yield FeishuWorld(app, http, fake, FeishuCallbacks(http, VERIFICATION_TOKEN, key))


class User:
    """A Feishu user writing to the bot one to one; ``say`` returns what reached them."""

    def __init__(self, world: FeishuWorld, open_id: str) -> None:
        self.world = world
        self.open_id = open_id
        self.seen = 0

    async def send(self, name: str = "text_message.json", **fields: Any) -> httpx.Response:
        return await self.world.platform.post(message_event(name, open_id=self.open_id, **fields))

    async def say(
        self, text: str | None = None, name: str = "text_message.json", **fields: Any
    ) -> list[str]:
        response = await self.send(name, text=text, **fields)
        assert response.status_code == 200, response.text
        assert response.json() == {"msg": "success"}
        return await self.received()

    async def received(self) -> list[str]:
        await self.world.deliver()
        texts = self.world.fake.messages(self.open_id, via="api")
        new, self.seen = texts[self.seen :], len(texts)
        return new
