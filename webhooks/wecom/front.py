"""The inbound pipeline WeCom and WeChat share, after their signatures have been checked.

Order (ARCHITECTURE.md, platforms.md §0): the view verifies and decrypts on the raw bytes;
then here the message is parsed, stored in the durable inbox under its dedupe key
(``MsgId``; events ``FromUserName:CreateTime:Event``) and only then acknowledged:

- WeCom: the view answers an empty 200 at once; the dialog step runs after it, in the
  response's background, and its reply goes out through the outbox (``message/send``).
- WeChat: the step starts at once and the view waits up to ``wechat_passive_reply_s`` for
  it; a finished step is answered in the HTTP response itself (a passive reply, free of the
  customer-service quota); a slower one gets ``success`` and its reply goes through the
  outbox like WeCom's.

Running the rest in the response's background (not a detached task) keeps it inside the
request, so a graceful shutdown waits for it. A crash between the acknowledgment and the
step's commit leaves the inbox row pending; ``recover`` replays such rows (triggered by the
next callback, at most once per ``inbox_recovery_seconds``). Replies are queued with the
dedupe key ``reply:<channel>:<inbox id>``, so a replay or a platform retry never sends twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fastapi import Response
from fastapi.responses import PlainTextResponse
from starlette.background import BackgroundTasks

from bot.context import MENU
from bot.events import InEvent
from community.catalog import t
from community.notify import Button, Reply, Target, enqueue
from storage import inbox
from storage.db import transaction
from webhooks.errors import BadXml
from webhooks.render import merge
from webhooks.xmlsafe import parse_xml

if TYPE_CHECKING:
    from linli.runtime import Runtime

__all__ = ["Inbound", "XmlFront", "front_for", "parse_message", "parse_query"]

log = logging.getLogger(__name__)

# Custom-menu keys (the platform console's 菜单 → 点击事件) that are dialog buttons.
MENU_KEYS = frozenset({MENU, "m.wish", "m.need", "m.sugg", "m.mine", "m.help", "wl"})
_MEDIA = frozenset({"image", "voice", "video", "shortvideo", "file", "link"})
_MAX_ID = 128  # identities.external_id

Passive = Callable[["Inbound", Reply], Response | None]


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters decoded exactly once, ``+`` kept as ``+`` (platforms.md §2.3).

    Form decoding would turn a literal ``+`` of a base64 ``echostr`` into a space; base64 and
    the other signed values never contain spaces, so keeping it is always right.
    """
    params: dict[str, str] = {}
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        if name:
            params.setdefault(unquote(name), unquote(value))
    return params


@dataclass(frozen=True, slots=True)
class Inbound:
    """One authenticated callback, parsed: who wrote, the dedupe key, what the dialog gets."""

    user: str
    to: str
    key: str | None  # None: nothing to act on (acknowledged, not stored)
    event: InEvent | None
    location: str | None = None  # a shared location's label ("" when it has none)
    agent_id: str = ""


def parse_message(channel: str, raw: bytes | str) -> Inbound:
    """The callback's plaintext XML as an ``Inbound``; BadXml when it is not a message."""
    fields = parse_xml(raw)
    user = fields.get("FromUserName", "").strip()
    if not user or len(user) > _MAX_ID:
        raise BadXml("bad_sender")
    to = fields.get("ToUserName", "").strip()
    kind = fields.get("MsgType", "").strip().lower()
    agent_id = fields.get("AgentID", "").strip()
    msg_id = fields.get("MsgId", "").strip()
    if len(msg_id) > 64:
        raise BadXml("bad_msg_id")

    def base(**kw: Any) -> InEvent:
        return InEvent(channel=channel, external_id=user, **kw)

    if kind == "event":
        name = fields.get("Event", "").strip()
        key = f"e:{user}:{fields.get('CreateTime', '').strip()[:16]}:{name[:32]}"
        event_key = fields.get("EventKey", "").strip()
        if name.lower() == "subscribe":  # follow (also by QR code): welcome or the menu
            return Inbound(user, to, key, base(payload=MENU), agent_id=agent_id)
        if name.lower() == "click" and event_key in MENU_KEYS:
            return Inbound(user, to, key, base(payload=event_key), agent_id=agent_id)
        # unsubscribe, enter_agent, LOCATION reports, VIEW, SCAN …: nothing to say.
        return Inbound(user, to, None, None, agent_id=agent_id)
    key = f"m:{msg_id}" if msg_id else "h:" + hashlib.sha1(_bytes(raw)).hexdigest()
    if kind == "text":
        event = base(text=fields.get("Content", ""))
    elif kind == "voice" and fields.get("Recognition", "").strip():
        event = base(text=fields["Recognition"].strip())  # the platform's voice-to-text
    elif kind == "location":
        label = " ".join(fields.get("Label", "").split())[:200]
        return Inbound(user, to, key, None, location=label, agent_id=agent_id)
    elif kind in _MEDIA:
        event = base(media=kind)
    else:
        log.info("%s: ignoring message type %r", channel, kind[:32])
        return Inbound(user, to, None, None, agent_id=agent_id)
    return Inbound(user, to, key, event, agent_id=agent_id)


def _bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")


def _replies(result: dict[str, Any] | None) -> list[Reply]:
    stored = (result or {}).get("replies") or []
    return [
        Reply(
            r.get("text", ""), tuple(Button(b["text"], b["payload"]) for b in r.get("buttons", []))
        )
        for r in stored
        if isinstance(r, dict)
    ]


class XmlFront:
    """Per-process state of one channel: per-resident order, in-flight steps, recovery."""

    def __init__(self, runtime: Runtime, channel: str, ack_body: str) -> None:
        self.runtime = runtime
        self.channel = channel
        self.ack_body = ack_body
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._inflight: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovered_at = float("-inf")

    def ack(self, background: BackgroundTasks | None = None) -> Response:
        return PlainTextResponse(self.ack_body, background=background)

    async def receive(
        self, inbound: Inbound, payload: str, *, passive: Passive | None = None, wait_s: float = 0
    ) -> Response:
        """Store, start the step, and answer: passively when it finished within ``wait_s``."""
        background = BackgroundTasks()
        self._schedule_recovery(background)
        if inbound.key is None:
            return self.ack(background)
        event_id = await self.runtime.inbox.store(self.channel, inbound.key[:160], payload)
        if event_id is None:  # a platform retry: act no second time, make sure it was answered
            background.add_task(self._answer_duplicate, inbound)
            return self.ack(background)
        if passive is None or wait_s <= 0:
            # Nothing waits for the step: it starts once the acknowledgment is on the wire.
            background.add_task(self._process, event_id, inbound)
            return self.ack(background)
        task = asyncio.create_task(self._step(event_id, inbound))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait({task}, timeout=wait_s)
        except asyncio.CancelledError:  # the request went away: still deliver
            self._detach(self._finish(task, event_id, inbound.user))
            raise
        if task.done():
            reply = task.result()
            if reply is not None:
                response = passive(inbound, reply)
                if response is not None:
                    response.background = background
                    return response
            background.add_task(self._deliver, event_id, inbound.user, reply)
        else:
            background.add_task(self._finish, task, event_id, inbound.user)
        return self.ack(background)

    def _detach(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock(self, user: str) -> asyncio.Lock:
        lock = self._locks.get(user)
        if lock is None:
            lock = self._locks[user] = asyncio.Lock()
        return lock

    async def _step(self, event_id: int, inbound: Inbound) -> Reply | None:
        """One dialog step for a stored event (one resident's steps run in arrival order)."""
        self._inflight.add(event_id)
        try:
            async with self._lock(inbound.user):
                replies = await self._run(event_id, inbound)
        except Exception:
            log.exception("%s step failed", self.channel)
            replies = [Reply(t("bot.error"))]
        finally:
            self._inflight.discard(event_id)
        return merge(replies)

    async def _run(self, event_id: int, inbound: Inbound) -> list[Reply]:
        runtime = self.runtime
        event = inbound.event
        # Answers the engine gives without marking the event processed are decided here, so
        # that the row is finished and never replayed (a replay would answer a second time).
        if inbound.location is not None:
            key = "messenger.location" if inbound.location else "messenger.location_unnamed"
            return await self._answer_alone(event_id, [Reply(t(key, label=inbound.location))])
        assert event is not None
        if event.text is not None and len(event.text.strip()) > runtime.settings.max_message_chars:
            limit = runtime.settings.max_message_chars
            return await self._answer_alone(event_id, [Reply(t("bot.too_long", limit=limit))])
        if not runtime.dialog.throttle.allow(f"{event.channel}:{event.external_id}"):
            return await self._answer_alone(event_id, [Reply(t("bot.too_fast"))])
        return list(
            await runtime.dialog.handle(event, check_throttle=False, inbox_event_id=event_id)
        )

    async def _answer_alone(self, event_id: int, replies: list[Reply]) -> list[Reply]:
        result = {"replies": [r.as_dict() for r in replies]}
        await inbox.finish_event(self.runtime.engine, event_id, result)
        return replies

    async def _deliver(self, event_id: int, user: str, reply: Reply | None) -> None:
        """Queue the step's reply for the active-send API; at most once per inbound event."""
        if reply is None:
            return
        try:
            async with transaction(self.runtime.factory) as session:
                dedupe = f"reply:{self.channel}:{event_id}"
                await enqueue(session, Target(self.channel, user), reply, dedupe_key=dedupe)
        except Exception:
            log.exception("%s reply could not be queued", self.channel)
            return
        self.runtime.wake_outbox()

    async def _finish(self, task: asyncio.Task[Reply | None], event_id: int, user: str) -> None:
        await self._deliver(event_id, user, await task)

    async def _process(self, event_id: int, inbound: Inbound) -> None:
        await self._deliver(event_id, inbound.user, await self._step(event_id, inbound))

    async def _answer_duplicate(self, inbound: Inbound) -> None:
        """A retried callback: if its step is done, (re)queue its reply — a no-op when queued.

        The platform retries only when it did not get our answer, e.g. a passive reply lost
        on the way; then the resident has not seen it and the active API must send it.
        """
        assert inbound.key is not None
        try:
            stored = await inbox.get_event(self.runtime.engine, self.channel, inbound.key[:160])
        except Exception:
            log.exception("%s duplicate lookup failed", self.channel)
            return
        if stored is None or stored["status"] == "pending":
            return  # still being processed: that step delivers its own reply
        await self._deliver(stored["id"], inbound.user, merge(_replies(stored.get("result"))))

    def _schedule_recovery(self, background: BackgroundTasks) -> None:
        loop = asyncio.get_running_loop()
        every = self.runtime.settings.inbox_recovery_seconds
        if loop.time() - self._recovered_at >= every:
            self._recovered_at = loop.time()
            background.add_task(self.recover)

    async def recover(self) -> int:
        """Replay this channel's events stored but never processed (a crash after the ack)."""
        engine = self.runtime.engine
        try:
            rows = await inbox.stale_pending(engine, self.runtime.settings.inbox_recovery_seconds)
        except Exception:
            log.exception("%s recovery failed", self.channel)
            return 0
        count = 0
        for row in rows:
            if row["source"] != self.channel or row["id"] in self._inflight:
                continue
            await inbox.mark_attempt(engine, row["id"])
            try:
                inbound = parse_message(self.channel, row["payload"])
            except BadXml:
                await inbox.finish_event(engine, row["id"], error="bad_xml")
                continue
            await self._process(row["id"], inbound)
            count += 1
        return count


_FRONTS: weakref.WeakKeyDictionary[Runtime, dict[str, XmlFront]] = weakref.WeakKeyDictionary()


def front_for(runtime: Runtime, channel: str, ack_body: str) -> XmlFront:
    """The one front of ``channel`` in this runtime (created on the first callback)."""
    fronts = _FRONTS.setdefault(runtime, {})
    front = fronts.get(channel)
    if front is None:
        front = fronts[channel] = XmlFront(runtime, channel, ack_body)
    return front
