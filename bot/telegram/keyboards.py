"""Rendering neutral replies as Telegram inline keyboards.

Callback data is limited to 64 bytes (a CJK character takes 3), so buttons carry our
short ASCII payloads (``cf.a1b2c3``, ``rt.42.5``) through a CallbackData factory, never text.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import ForceReply, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from community.notify import Reply


class ButtonData(CallbackData, prefix="b"):
    p: str


def render_markup(
    reply: Reply, *, in_group: bool = False
) -> InlineKeyboardMarkup | ForceReply | None:
    if reply.buttons:
        builder = InlineKeyboardBuilder()
        for number, button in enumerate(reply.buttons, start=1):
            builder.button(
                text=f"{number}. {button.text}", callback_data=ButtonData(p=button.payload)
            )
        # Big buttons for elderly thumbs: one per row, two when labels are short stars.
        builder.adjust(1)
        return builder.as_markup()
    if reply.expects_text and in_group:
        return ForceReply(selective=True)
    return None


def split_text(text: str, limit: int = 4000) -> list[str]:
    """Telegram caps a message at 4096 characters: split on line breaks where possible."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    while text:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return parts
