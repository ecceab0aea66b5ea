"""Telegram end to end: a real aiogram Bot talks HTTP to a local fake Bot API server;
updates enter through /webhooks/telegram exactly as Telegram would send them."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from tests.e2e.harness import all_requests, client, make_settings, running_app, set_org_notify
from tests.support.fake_telegram import FakeTelegram, make_callback_update, make_message_update

RESIDENT = 5001
GROUP = -1001234567890
MEMBER = 7001


class TelegramUser:
    """Sends updates for one person through the webhook and reads what the bot answered."""

    ids = itertools.count(1000)

    def __init__(
        self, http: httpx.AsyncClient, app: Any, fake: FakeTelegram, user_id: int, chat_id: int
    ) -> None:
        self.http, self.app, self.fake = http, app, fake
        self.user_id, self.chat_id = user_id, chat_id
        self.secret = app.state.runtime.settings.telegram_webhook_secret()

    async def post(self, update: dict[str, Any], secret: str | None = None) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.secret if secret is None else secret}
        response = await self.http.post("/webhooks/telegram", json=update, headers=headers)
        await self.app.state.runtime.telegram.drain()
        return response

    def sent(self) -> list[dict[str, Any]]:
        return [m for m in self.fake.sent_messages() if str(m["chat_id"]) == str(self.chat_id)]

    async def _exchange(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        before = len(self.sent())
        response = await self.post(update)
        assert response.status_code == 200, response.text
        return self.sent()[before:]

    async def text(self, text: str) -> list[dict[str, Any]]:
        return await self._exchange(
            make_message_update(next(self.ids), self.user_id, self.chat_id, text)
        )

    async def press(self, payload: str) -> list[dict[str, Any]]:
        return await self._exchange(
            make_callback_update(next(self.ids), self.user_id, self.chat_id, f"b:{payload}", 1)
        )


def button(messages: list[dict[str, Any]], label: str) -> str:
    for message in reversed(messages):
        markup = message.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for key in row:
                if key["text"].split(". ", 1)[-1] == label:
                    return key["callback_data"].removeprefix("b:")
    raise AssertionError(f"no button {label!r}")


@pytest.fixture
async def fake_telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.mark.parametrize(
    ("text", "org_name"),
    [
        ("楼下的路灯不亮了 晚上出门看不见", "梅园物业服务中心"),
        ("我的微心愿是给楼里独居的李奶奶送几顿热乎的午饭", "夕阳红居家养老服务中心"),
    ],
    ids=["need", "wish"],
)
async def test_request_from_telegram_to_rating(
    database_url: str, tmp_path, fake_telegram, text: str, org_name: str
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        telegram_token="42:TEST",
        telegram_api_url=fake_telegram.base_url,
        telegram_mode="webhook",
    )
    async with running_app(settings) as app, client(app) as http:
        runtime = app.state.runtime
        await set_org_notify(app, org_name, f"telegram:{GROUP}")
        resident = TelegramUser(http, app, fake_telegram, RESIDENT, RESIDENT)
        member = TelegramUser(http, app, fake_telegram, MEMBER, GROUP)

        messages = await resident.text("/start")
        assert any("Telegram" in m["text"] for m in messages)  # cross-border notice
        messages = await resident.press(button(messages, "同意"))
        messages = await resident.press(button(messages, "梅园街道"))
        messages = await resident.press(button(messages, "桂花社区"))
        messages = await resident.text(text)
        assert org_name in messages[-1]["text"]
        messages = await resident.press(button(messages, "确认"))
        assert "已受理" in messages[0]["text"]
        [request] = await all_requests(app)
        assert request.status == "routed"

        # The organization's group receives the notice through the outbox.
        await runtime.outbox.drain_once()
        [notice] = member.sent()
        assert request.number in notice["text"]
        messages = await member.press(button([notice], "接单"))
        messages = await member.press(button(messages, "已办结"))
        assert messages[-1]["reply_markup"].get("force_reply") is True
        messages = await member.text("已经办好了")
        assert request.number in messages[-1]["text"]

        await runtime.outbox.drain_once()
        last = resident.sent()[-1]
        assert "已办结" in last["text"]
        messages = await resident.press(button([last], "★★★★ 满意"))
        assert "谢谢" in messages[0]["text"]
        [request] = await all_requests(app)
        assert request.status == "resolved" and request.rating == 4


async def test_duplicate_update_and_bad_secret(database_url: str, tmp_path, fake_telegram) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        telegram_token="42:TEST",
        telegram_api_url=fake_telegram.base_url,
        telegram_mode="webhook",
    )
    async with running_app(settings) as app, client(app) as http:
        resident = TelegramUser(http, app, fake_telegram, RESIDENT, RESIDENT)
        await resident.text("/start")
        for label in ("同意", "梅园街道", "桂花社区"):
            await resident.press(button(resident.sent(), label))
        await resident.text("小区里的垃圾桶满了好几天没人清运")
        confirm = make_callback_update(
            424242, RESIDENT, RESIDENT, f"b:{button(resident.sent(), '确认')}", 1
        )
        answers = [await resident.post(confirm) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.json()["duplicate"] for a in answers] == [False, True, True]
        assert len(await all_requests(app)) == 1

        before = len(fake_telegram.calls)
        update = make_message_update(999, RESIDENT, RESIDENT, "你好")
        assert (await resident.post(update, secret="wrong")).status_code == 401
        assert (await resident.post(update, secret="")).status_code == 401
        assert len(fake_telegram.calls) == before


async def test_polling_mode_answers_through_the_inbox(
    sqlite_url: str, tmp_path, fake_telegram
) -> None:
    settings = make_settings(
        sqlite_url,
        tmp_path,
        telegram_token="42:TEST",
        telegram_api_url=fake_telegram.base_url,
        telegram_mode="polling",
        run_background=True,
    )
    async with running_app(settings) as app:
        fake_telegram.push_update(make_message_update(1, RESIDENT, RESIDENT, "/start"))
        welcome = await fake_telegram.wait_for(
            lambda: [m for m in fake_telegram.sent_messages() if "邻里" in m["text"]], timeout=10
        )
        assert str(welcome[0]["chat_id"]) == str(RESIDENT)
        from sqlalchemy import select

        from storage.db import transaction
        from storage.models import InboxEvent

        async with transaction(app.state.runtime.factory) as session:
            rows = list(await session.scalars(select(InboxEvent)))
        assert [(r.source, r.event_key) for r in rows] == [("telegram", "1")]


async def test_webhook_mode_registers_with_secret(sqlite_url: str, tmp_path, fake_telegram) -> None:
    settings = make_settings(
        sqlite_url,
        tmp_path,
        telegram_token="42:TEST",
        telegram_api_url=fake_telegram.base_url,
        telegram_mode="auto",
        public_url="https://linli.example.org",
        run_background=True,
    )
    async with running_app(settings, demo=False) as app:
        hook = fake_telegram.webhook
        assert hook is not None and hook["url"] == "https://linli.example.org/webhooks/telegram"
        assert hook["secret_token"] == app.state.runtime.settings.telegram_webhook_secret()
        assert set(hook["allowed_updates"]) >= {"message", "callback_query"}
