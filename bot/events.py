"""The platform-neutral event a channel hands to the dialog engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InEvent:
    """One thing a person did: typed text, pressed a button, shared a contact, sent media.

    ``channel`` is ``web``, ``telegram`` or ``generic:<name>``; ``external_id`` the
    person on that channel; ``chat_id`` where answers go when it differs (group chats).
    """

    channel: str
    external_id: str
    text: str | None = None
    payload: str | None = None
    chat_id: str | None = None
    display_name: str | None = None
    phone: str | None = None
    media: str | None = None  # image | voice | location | file … (not text)
    is_group: bool = False
