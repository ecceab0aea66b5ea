"""Telegram front: Bot and Dispatcher factories, update processing and the outbox sender."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine import DialogEngine
from bot.telegram.keyboards import render_markup, split_text
from bot.telegram.middlewares import DialogMiddleware, ThrottleMiddleware
from bot.telegram.router import build_router
from community.notify import Button, Reply
from community.outbox import SendResult
from linli.settings import Settings
from storage import inbox
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
SOURCE = "telegram"


def create_bot(settings: Settings) -> Bot:
    assert settings.telegram_token is not None
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(settings.telegram_token.get_secret_value(), session=session)


def create_dispatcher(dialog: DialogEngine) -> Dispatcher:
    dp = Dispatcher()
    dp.update.outer_middleware(DialogMiddleware(dialog))
    throttle = ThrottleMiddleware(dialog.throttle)
    dp.message.outer_middleware(throttle)
    dp.callback_query.outer_middleware(throttle)
    dp.include_router(build_router())
    return dp


class TelegramFront:
    """Owns the Bot and Dispatcher; processes stored updates with a few workers.

    Acknowledging and processing are decoupled by a bounded queue: a burst of updates is
    acknowledged as fast as it can be stored, and worked off by ``WORKERS`` tasks. When
    the queue is full the update simply stays pending in the inbox and the recovery loop
    picks it up, so nothing is lost and the acknowledging path never waits for dialogs.
    Updates of one chat are handled one at a time, in the order they were received.
    """

    WORKERS = 4
    QUEUE_SIZE = 1000

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        dialog: DialogEngine,
        writer: inbox.InboxWriter | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.writer = writer or inbox.InboxWriter(engine)
        self.bot = create_bot(settings)
        self.dp = create_dispatcher(dialog)
        self._chat_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._queue: asyncio.Queue[tuple[int, dict]] = asyncio.Queue(self.QUEUE_SIZE)
        self._workers: list[asyncio.Task[None]] = []
        self._queued: set[int] = set()

    async def accept(self, raw: bytes) -> bool:
        """Store an update (deduped by update_id) and queue it; False for a duplicate."""
        data = json.loads(raw)
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int):
            raise ValueError("update_id missing")
        event_id = await self.writer.store(SOURCE, str(update_id), raw.decode())
        if event_id is None:
            return False
        self.schedule(event_id, data)
        return True

    def schedule(self, event_id: int, data: dict) -> None:
        if event_id in self._queued:
            return
        self._ensure_workers()
        try:
            self._queue.put_nowait((event_id, data))
            self._queued.add(event_id)
        except asyncio.QueueFull:
            pass  # stays pending in the inbox; the recovery loop replays it

    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if not w.done()]
        while len(self._workers) < self.WORKERS:
            self._workers.append(asyncio.create_task(self._work(), name="tg-worker"))

    async def _work(self) -> None:
        while True:
            event_id, data = await self._queue.get()
            try:
                await self.process(event_id, data)
            finally:
                self._queued.discard(event_id)
                self._queue.task_done()

    async def process(self, event_id: int, data: dict) -> None:
        update = Update.model_validate(data, context={"bot": self.bot})
        chat_key = _chat_key(data)
        async with self._chat_locks[chat_key]:
            try:
                await self.dp.feed_update(self.bot, update)
            except Exception as exc:
                log.exception("telegram update failed")
                await inbox.finish_event(self.engine, event_id, error=type(exc).__name__)
                return
        await inbox.finish_event(self.engine, event_id)

    async def drain(self) -> None:
        """Wait until every queued update was processed (tests and shutdown)."""
        if self._workers:
            await self._queue.join()

    async def recover(self, older_than_s: float) -> int:
        """Re-feed updates stored before a crash but never processed."""
        rows = await inbox.stale_pending(self.engine, older_than_s)
        rows = [r for r in rows if r["source"] == SOURCE]
        for row in rows:
            await inbox.mark_attempt(self.engine, row["id"])
            self.schedule(row["id"], json.loads(row["payload"]))
        return len(rows)

    async def send(self, message: OutboxMessage) -> SendResult:
        """Outbox sender for ``telegram`` rows."""
        reply = Reply(
            message.text, tuple(Button(b["text"], b["payload"]) for b in message.buttons or [])
        )
        try:
            chat_id = int(message.target)
            parts = split_text(reply.text)
            for index, part in enumerate(parts):
                markup = render_markup(reply) if index == len(parts) - 1 else None
                await self.bot.send_message(chat_id, part, reply_markup=markup)
        except TelegramRetryAfter as exc:
            return SendResult(ok=False, retry_after_s=float(exc.retry_after), error="retry_after")
        except TelegramForbiddenError as exc:
            return SendResult(ok=False, gone=True, error=exc.message)
        except TelegramMigrateToChat as exc:
            return SendResult(ok=False, permanent=True, error=f"migrated:{exc.migrate_to_chat_id}")
        except (TelegramNotFound, TelegramBadRequest, TelegramUnauthorizedError) as exc:
            return SendResult(ok=False, permanent=True, error=exc.message)
        except (ValueError, TypeError) as exc:
            return SendResult(ok=False, permanent=True, error=str(exc))
        except Exception as exc:
            return SendResult(ok=False, error=type(exc).__name__)
        return SendResult(ok=True)

    async def start_webhook(self, public_url: str) -> None:
        await self.bot.set_webhook(
            public_url.rstrip("/") + "/webhooks/telegram",
            secret_token=self.settings.telegram_webhook_secret(),
            allowed_updates=self.dp.resolve_used_update_types(),
            drop_pending_updates=False,
        )

    async def run_polling(self) -> None:
        """Long polling for deployments without a public URL; updates still go via the inbox."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        offset = 0
        while True:
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=25)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("telegram polling failed")
                await asyncio.sleep(5)
                continue
            for update in updates:
                offset = update.update_id + 1
                raw = update.model_dump_json(exclude_none=True).encode()
                await self.accept(raw)

    async def close(self) -> None:
        await self.drain()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self.bot.session.close()


def _chat_key(data: dict) -> str:
    for key in ("message", "edited_message", "callback_query"):
        part = data.get(key)
        if isinstance(part, dict):
            chat = (part.get("message") or part).get("chat") or {}
            if "id" in chat:
                return str(chat["id"])
            if "from" in part:
                return str(part["from"].get("id"))
    return "_"
