"""Per-step dialog context: the session, the person, their state and the replies so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import InEvent
from community.audit import Actor
from community.catalog import t
from community.notify import Button, Reply
from linli.settings import Settings
from storage.models import DialogState, Identity, User


@dataclass
class Ctx:
    session: AsyncSession
    settings: Settings
    event: InEvent
    identity: Identity
    user: User
    state: DialogState
    replies: list[Reply] = field(default_factory=list)

    @property
    def actor(self) -> Actor:
        return Actor("resident", str(self.user.id))

    @property
    def data(self) -> dict[str, Any]:
        return self.state.data

    def goto(self, state: str, **data: Any) -> None:
        """Move to ``state`` with fresh data (the old step's data is dropped)."""
        self.state.state = state
        self.state.data = dict(data)

    def say(self, text: str, *buttons: Button, expects_text: bool = False) -> None:
        self.replies.append(Reply(text, tuple(buttons), expects_text))

    def say_key(
        self, key: str, *buttons: Button, expects_text: bool = False, **params: object
    ) -> None:
        self.say(t(key, **params), *buttons, expects_text=expects_text)


def btn(key: str, payload: str) -> Button:
    """A button whose label comes from the catalog."""
    return Button(t(key), payload)


BACK = "back"
CANCEL = "x"
MENU = "m.menu"
