"""A running app with a WeChat Official Account configured against the fake platform."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import client, make_settings, running_app
from tests.support.fake_wecom import FakeWeixin, WechatCallbacks, fill_xml
from webhooks.wecom.crypto import MsgCrypt
from webhooks.xmlsafe import parse_xml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx_test_app"
OPENID = "oYz3Q6kQmZ8l0v4H2dS7nXcA1bEw"
_MSG_IDS = itertools.count(24512736914560000)


def fixture(name: str, **fields: str | int) -> str:
    return fill_xml((FIXTURES / name).read_text("utf-8"), **fields)


@dataclass
class WechatWorld:
    app: Any
    http: httpx.AsyncClient
    fake: FakeWeixin
    platform: WechatCallbacks
    safe: bool

    async def deliver(self) -> None:
        await self.app.state.runtime.outbox.drain_once()

    def read_reply(self, response: httpx.Response) -> str | None:
        """The text of a passive reply (decrypted in safe mode); None for ``success``."""
        assert response.status_code == 200, response.text
        if response.text == "success":
            return None
        assert response.headers["content-type"].startswith("application/xml")
        fields = parse_xml(response.content)
        if self.safe:
            crypt = MsgCrypt(TOKEN, AES_KEY, APP_ID)
            args = (fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
            fields = parse_xml(crypt.decrypt_message(*args, fields["Encrypt"]))
        assert fields["MsgType"] == "text" and fields["FromUserName"] == "gh_1f3a5c7e9b2d"
        return fields["Content"]


@asynccontextmanager
async def wechat_world(
    database_url: str,
    data_dir: Path,
    *,
    safe: bool = False,
    passive_s: float = 0.0,
    compatible: bool = False,
    **overrides: Any,
) -> AsyncIterator[WechatWorld]:
    async with FakeWeixin(app_id=APP_ID) as fake:
        values: dict[str, Any] = {
            "wechat_app_id": APP_ID,
            "wechat_app_secret": "wechat-secret",
            "wechat_token": TOKEN,
            "wechat_aes_key": AES_KEY if safe else "",
            "wechat_api_url": fake.base_url,
            "wechat_passive_reply_s": passive_s,
        }
        settings = make_settings(database_url, data_dir, **(values | overrides))
        async with running_app(settings) as app, client(app) as http:
            platform = WechatCallbacks(
                http, TOKEN, APP_ID, AES_KEY if safe else None, compatible=compatible
            )
            yield WechatWorld(app, http, fake, platform, safe)


class Follower:
    """A follower writing to the account; ``say`` returns what reached them, by either path."""

    def __init__(self, world: WechatWorld, openid: str = OPENID) -> None:
        self.world = world
        self.openid = openid
        self.seen = 0

    def message(self, name: str = "text_message.xml", **fields: Any) -> str:
        fields.setdefault("FromUserName", self.openid)
        fields.setdefault("CreateTime", int(time.time()))
        if "<MsgId>" in (FIXTURES / name).read_text("utf-8"):
            fields.setdefault("MsgId", next(_MSG_IDS))
        return fixture(name, **fields)

    async def send(self, name: str = "text_message.xml", **fields: Any) -> httpx.Response:
        return await self.world.platform.post(self.message(name, **fields))

    async def say(
        self, text: str | None = None, name: str = "text_message.xml", **fields: Any
    ) -> list[str]:
        if text is not None:
            fields["Content"] = text
        passive = self.world.read_reply(await self.send(name, **fields))
        return ([passive] if passive is not None else []) + await self.received()

    async def received(self) -> list[str]:
        """Messages the customer-service API delivered since the last look."""
        await self.world.deliver()
        texts = self.world.fake.messages(self.openid, api="wechat")
        new, self.seen = texts[self.seen :], len(texts)
        return new
