"""Neutral replies (text + buttons) as plain text for platforms without buttons.

WeCom app messages and WeChat customer-service/passive replies carry text only. A reply's
buttons become numbered lines at its end (「回复 1：确认」), and the resident answers with the
number: the dialog engine maps a bare number to the buttons of the last question it asked
(``bot/engine.py`` ``_numbered_choice``), so the numbers here must be exactly that order.

One dialog step may produce several replies (「谢谢您！」 then 「请选择您所在的街道」). They are
merged into one message: one platform message per resident message is kinder to read and
to WeChat's customer-service quota. Only the buttons of the last reply that has buttons are
numbered, because those are the ones the engine remembers; earlier buttons in the same step
(rare) are dropped rather than numbered wrongly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from community.catalog import t
from community.notify import Button, Reply

__all__ = ["TEXT_LIMIT_BYTES", "merge", "numbered", "render_parts", "split_utf8"]

# WeCom message/send and WeChat text messages: at most 2048 bytes of UTF-8 per message.
TEXT_LIMIT_BYTES = 2048


def merge(replies: Sequence[Reply]) -> Reply | None:
    """One message for one dialog step: texts joined by a blank line, the last buttons kept."""
    texts = [r.text.strip() for r in replies if r.text and r.text.strip()]
    buttons = next((r.buttons for r in reversed(replies) if r.buttons), ())
    if not texts and not buttons:
        return None
    return Reply("\n\n".join(texts), tuple(buttons))


def _label(button: Button | Mapping[str, Any]) -> str:
    text = button.text if isinstance(button, Button) else button.get("text", "")
    return " ".join(str(text).split())  # a label stays on its line


def numbered(text: str, buttons: Iterable[Button | Mapping[str, Any]] = ()) -> str:
    """``text`` followed by one 「回复 N：label」 line per button, numbered from 1."""
    lines = [
        t("messenger.option", number=index, label=_label(button))
        for index, button in enumerate(buttons, start=1)
    ]
    if not lines:
        return text
    return f"{text}\n\n" + "\n".join(lines) if text else "\n".join(lines)


def split_utf8(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Pieces of at most ``limit`` UTF-8 bytes, cut at line ends where possible, never mid-char."""
    if limit < 4:
        raise ValueError("limit must hold at least one character")
    if len(text.encode("utf-8")) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode("utf-8")) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = ""
        while len(line.encode("utf-8")) > limit:  # one line longer than a whole message
            head = _prefix(line, limit)
            parts.append(head)
            line = line[len(head) :]
        current = line
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()]


def _prefix(line: str, limit: int) -> str:
    """The longest prefix of ``line`` within ``limit`` bytes (whole characters only)."""
    size = 0
    for index, char in enumerate(line):
        size += len(char.encode("utf-8"))
        if size > limit:
            return line[:index]
    return line


def render_parts(
    text: str,
    buttons: Iterable[Button | Mapping[str, Any]] = (),
    limit: int = TEXT_LIMIT_BYTES,
) -> list[str]:
    """The messages to send for one reply: the numbered options always end the last one."""
    return split_utf8(numbered(text, buttons), limit)
