"""A real aiogram 3 Bot against FakeTelegram: shapes, wire decoding and error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from tests.support.fake_telegram import (
    FakeTelegram,
    make_callback_update,
    make_message_update,
)

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[
        [InlineKeyboardButton(text="水电维修", callback_data="cat:water")],
        [InlineKeyboardButton(text="取消", callback_data="cancel")],
    ]
)
KEYBOARD_JSON = {
    "inline_keyboard": [
        [{"text": "水电维修", "callback_data": "cat:water"}],
        [{"text": "取消", "callback_data": "cancel"}],
    ]
}


def _dump(obj: Any) -> Any:
    """Compare aiogram objects by their wire shape (== also compares bound-bot context)."""
    return obj.model_dump(exclude_none=True) if obj is not None else None


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    bot = Bot("42:TEST", session=session)
    yield bot
    await bot.session.close()


async def test_get_me(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.id == 42 and me.is_bot and me.username == "linli_test_bot"
    assert fake.calls[0].method == "getMe" and fake.calls[0].token == "42:TEST"


async def test_send_message_with_inline_keyboard(bot: Bot, fake: FakeTelegram) -> None:
    first = await bot.send_message(1001, "请选择报修类别：", reply_markup=KEYBOARD)
    second = await bot.send_message(1001, "第二条")
    assert isinstance(first, Message)
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.chat.id == 1001 and first.chat.type == "private"
    assert first.text == "请选择报修类别："
    assert _dump(first.reply_markup) == KEYBOARD_JSON
    sent = fake.sent_messages(chat_id=1001)
    assert [m["text"] for m in sent] == ["请选择报修类别：", "第二条"]
    assert sent[0]["reply_markup"] == KEYBOARD_JSON  # form field JSON decoded
    assert sent[0]["chat_id"] == 1001  # form field "1001" decoded to int
    assert fake.sent_messages(chat_id=2) == []


async def test_group_chat_shape(bot: Bot, fake: FakeTelegram) -> None:
    group = await bot.send_message(-4242, "通知")
    supergroup = await bot.send_message(-1001234567890, "通知")
    assert group.chat.type == "group" and supergroup.chat.type == "supergroup"


async def test_edit_and_callback_answer(bot: Bot, fake: FakeTelegram) -> None:
    sent = await bot.send_message(7, "请选择：", reply_markup=KEYBOARD)
    edited = await bot.edit_message_text("已选择：水电维修", chat_id=7, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.text == "已选择：水电维修"
    assert edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("已选择：水电维修", chat_id=7, message_id=sent.message_id)
    markup = await bot.edit_message_reply_markup(
        chat_id=7, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    assert isinstance(markup, Message) and _dump(markup.reply_markup) == KEYBOARD_JSON
    assert await bot.answer_callback_query("cbq-1", text="已收到", show_alert=False)
    [answer] = [c for c in fake.calls if c.method == "answerCallbackQuery"]
    assert answer.params == {"callback_query_id": "cbq-1", "text": "已收到", "show_alert": False}
    assert await bot.delete_message(7, sent.message_id)


async def test_callback_data_over_64_bytes_rejected(bot: Bot) -> None:
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="楼" * 22)]]  # 66 bytes
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(7, "x", reply_markup=too_long)


async def test_set_webhook_with_secret_token(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.set_webhook(
        "https://linli.example/webhooks/telegram",
        secret_token="s3cr3t_TOKEN-1",
        allowed_updates=["message", "callback_query"],
        drop_pending_updates=True,
    )
    [call] = [c for c in fake.calls if c.method == "setWebhook"]
    assert call.params["secret_token"] == "s3cr3t_TOKEN-1"
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert call.params["drop_pending_updates"] is True
    info = await bot.get_webhook_info()
    assert info.url == "https://linli.example/webhooks/telegram"
    assert info.allowed_updates == ["message", "callback_query"]
    with pytest.raises(TelegramBadRequest, match="unallowed characters"):
        await bot.set_webhook("https://linli.example/tg", secret_token="has space")
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_set_my_commands(bot: Bot, fake: FakeTelegram) -> None:
    commands = [
        BotCommand(command="start", description="开始"),
        BotCommand(command="help", description="帮助"),
    ]
    assert await bot.set_my_commands(commands)
    assert [_dump(c) for c in await bot.get_my_commands()] == [_dump(c) for c in commands]


async def test_blocked_chat_raises_forbidden(bot: Bot, fake: FakeTelegram) -> None:
    fake.block_chat(555)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(555, "您好")
    assert fake.sent_messages(555) == []
    assert fake.calls[-1].status == 403
    await bot.send_message(556, "other chats still work")


async def test_rate_limited_raises_retry_after(bot: Bot, fake: FakeTelegram) -> None:
    fake.rate_limit(retry_after=3, times=1)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(1, "hi")
    assert info.value.retry_after == 3
    assert (await bot.send_message(1, "hi")).message_id == 1  # only the first call was limited


async def test_enforced_limits_per_chat_and_group(fake: FakeTelegram, bot: Bot) -> None:
    now = [1000.0]
    fake.enforce_limits = True
    fake.clock = lambda: now[0]
    for _ in range(3):  # the per-chat burst
        await bot.send_message(9, "x")
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(9, "x")
    assert info.value.retry_after == 1
    now[0] += 1.0
    await bot.send_message(9, "x")

    # A group allows a burst of 20, refilled at 20/min: one message a second (fine for the
    # per-chat limit) runs dry after about 30 s.
    sent_in_group = 0
    with pytest.raises(TelegramRetryAfter) as info:
        for _ in range(60):
            now[0] += 1.0
            await bot.send_message(-77, "群消息")
            sent_in_group += 1
    assert 27 <= sent_in_group <= 31
    assert 1 <= info.value.retry_after <= 3

    # 30 messages/s overall, whatever the chats.
    now[0] += 100.0
    with pytest.raises(TelegramRetryAfter):
        for chat_id in range(100, 140):
            await bot.send_message(chat_id, "广播")
    assert len(fake.sent_messages()) - 4 - sent_in_group == 30


async def test_unknown_method_is_404(bot: Bot) -> None:
    class Bogus(TelegramMethod[bool]):
        __returning__ = bool
        __api_method__ = "noSuchMethod"

    with pytest.raises(TelegramNotFound, match="method not found"):
        await bot(Bogus())


async def test_polling_get_updates(bot: Bot, fake: FakeTelegram) -> None:
    fake.push_update(make_message_update(10, 1001, 1001, "/start"))
    updates = await bot.get_updates(offset=0, timeout=0)
    assert [u.update_id for u in updates] == [10]
    assert updates[0].message and updates[0].message.text == "/start"
    # Long poll: the waiting call returns as soon as an update arrives.
    waiting = asyncio.create_task(bot.get_updates(offset=11, timeout=5))
    await asyncio.sleep(0.05)
    fake.push_update(make_callback_update(11, 1001, 1001, "cat:water", message_id=1))
    [update] = await asyncio.wait_for(waiting, 2)
    assert update.callback_query and update.callback_query.data == "cat:water"
    assert await bot.get_updates(offset=12, timeout=0) == []
    await bot.set_webhook("https://linli.example/tg")
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()


async def test_long_poll_timeout_is_capped(bot: Bot, fake: FakeTelegram) -> None:
    fake.max_poll_s = 0.1
    assert await asyncio.wait_for(bot.get_updates(timeout=30), 2) == []


async def test_wait_for(bot: Bot, fake: FakeTelegram) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await bot.send_message(3, "稍后")

    task = asyncio.create_task(later())
    sent = await fake.wait_for(lambda: fake.sent_messages(3), timeout=2)
    assert sent[0]["text"] == "稍后"
    await task
    with pytest.raises(TimeoutError):
        await fake.wait_for(lambda: fake.sent_messages(4), timeout=0.1)


def test_update_builders_validate_as_aiogram_updates() -> None:
    message = Update.model_validate(make_message_update(1, 1001, 1001, "/report 楼道灯坏了"))
    assert message.message and message.message.from_user
    assert message.message.from_user.first_name == "张阿姨"
    assert message.message.chat.type == "private"
    assert message.message.entities and message.message.entities[0].length == len("/report")
    group = Update.model_validate(make_message_update(2, 1001, -500, "大家好"))
    assert group.message and group.message.chat.type == "group"
    callback = Update.model_validate(make_callback_update(3, 1001, 1001, "ok", message_id=9))
    assert isinstance(callback.callback_query, CallbackQuery)
    assert isinstance(callback.callback_query.message, Message)
    assert callback.callback_query.message.message_id == 9
    assert callback.callback_query.message.from_user.id == 42  # type: ignore[union-attr]


async def test_json_multipart_and_query_bodies(fake: FakeTelegram) -> None:
    base = f"{fake.base_url}/bot42:TEST"
    async with httpx.AsyncClient() as http:
        by_json = await http.post(f"{base}/sendMessage", json={"chat_id": 5, "text": "json"})
        by_multipart = await http.post(
            f"{base}/sendMessage",
            data={"chat_id": "5", "text": "multipart"},
            files={"photo": ("a.jpg", b"\xff\xd8", "image/jpeg")},
        )
        by_query = await http.get(f"{base}/SENDMESSAGE", params={"chat_id": "5", "text": "get"})
        bad_token = await http.post(f"{fake.base_url}/botnot-a-token/getMe")
    assert [r.status_code for r in (by_json, by_multipart, by_query)] == [200, 200, 200]
    assert by_multipart.json()["result"]["message_id"] == 2
    assert [m["text"] for m in fake.sent_messages(5)] == ["json", "multipart", "get"]
    assert fake.calls[1].params["photo"] == {"filename": "a.jpg", "content": b"\xff\xd8"}
    assert bad_token.status_code == 401
    assert bad_token.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_stop_releases_a_pending_long_poll() -> None:
    fake = await FakeTelegram(max_poll_s=30).start()
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    polling = Bot("42:TEST", session=session)
    try:
        waiting = asyncio.create_task(polling.get_updates(timeout=30))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(fake.stop(), 2)
        assert await asyncio.wait_for(waiting, 2) == []
    finally:
        await polling.session.close()
