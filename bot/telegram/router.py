"""aiogram routers: translate Telegram updates into neutral events and send the replies."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message

from bot.engine import DialogEngine
from bot.events import InEvent
from bot.telegram.keyboards import ButtonData, render_markup, split_text
from community.notify import Reply


def build_router() -> Router:
    """A fresh router per dispatcher (a router can have only one parent)."""
    router = Router(name="linli")

    @router.callback_query(ButtonData.filter())
    async def on_button(
        query: CallbackQuery, callback_data: ButtonData, bot: Bot, dialog: DialogEngine
    ) -> None:
        await query.answer()
        message = query.message
        chat = message.chat if message is not None else None
        event = InEvent(
            channel="telegram",
            external_id=str(query.from_user.id),
            chat_id=str(chat.id) if chat else str(query.from_user.id),
            payload=callback_data.p,
            display_name=query.from_user.first_name,
            is_group=chat is not None and chat.type != "private",
        )
        await _answer(bot, event, await dialog.handle(event, check_throttle=False))

    @router.message(F.contact)
    async def on_contact(message: Message, bot: Bot, dialog: DialogEngine) -> None:
        event = _event(message, phone=message.contact.phone_number if message.contact else None)
        await _answer(bot, event, await dialog.handle(event, check_throttle=False))

    @router.message(F.text)
    async def on_text(message: Message, bot: Bot, dialog: DialogEngine) -> None:
        event = _event(message, text=message.text)
        await _answer(bot, event, await dialog.handle(event, check_throttle=False))

    @router.message()
    async def on_other(message: Message, bot: Bot, dialog: DialogEngine) -> None:
        media = "location" if message.location else "media"
        event = _event(message, media=media, text=message.caption)
        await _answer(bot, event, await dialog.handle(event, check_throttle=False))

    return router


def _event(message: Message, **fields: Any) -> InEvent:
    user = message.from_user
    return InEvent(
        channel="telegram",
        external_id=str(user.id if user else message.chat.id),
        chat_id=str(message.chat.id),
        display_name=user.first_name if user else None,
        is_group=message.chat.type != "private",
        **fields,
    )


async def _answer(bot: Bot, event: InEvent, replies: list[Reply]) -> None:
    chat_id = int(event.chat_id or event.external_id)
    for reply in replies:
        parts = split_text(reply.text)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            markup = render_markup(reply, in_group=event.is_group) if last else None
            await bot.send_message(chat_id, part, reply_markup=markup)
