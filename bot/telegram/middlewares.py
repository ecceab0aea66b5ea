"""Outer middlewares: inject the dialog engine, and drop floods before they cost anything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.engine import DialogEngine
from bot.throttle import Throttle
from community.catalog import t


class DialogMiddleware(BaseMiddleware):
    """Hands every handler the dialog engine (which owns the database session factory)."""

    def __init__(self, dialog: DialogEngine) -> None:
        self.dialog = dialog

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["dialog"] = self.dialog
        return await handler(event, data)


class ThrottleMiddleware(BaseMiddleware):
    """Per-user token bucket; an over-eager user gets one polite notice, not silence."""

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        if user is not None and not self.throttle.allow(f"telegram:{user.id}"):
            if isinstance(event, CallbackQuery):
                await event.answer(t("bot.too_fast"))
            elif isinstance(event, Message):
                await event.answer(t("bot.too_fast"))
            return None
        return await handler(event, data)
