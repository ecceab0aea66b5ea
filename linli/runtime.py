"""Everything one ``linli serve`` process runs, started and stopped in order.

Start: database engine → migrations → NLP dictionaries → dialog engine → channel fronts
→ outbox worker and inbox recovery → scheduler. ``ready`` turns true only after all of it,
which is what ``/readyz`` reports.

Several processes may run against one database. Work that must happen once — scheduled
jobs, broadcast fan-out and the bulk (broadcast) lane of the outbox, whose rate limits are
counted in memory — runs only in the process holding the scheduler lease (the leader);
every process sends the action lane (routed requests, alerts, status changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import httpx

from bot.engine import DialogEngine
from community.broadcasts import BroadcastFanout
from community.keywords import reload_classifier
from community.outbox import OutboxWorker, Sender, SendResult
from linli.settings import Settings
from nlp import initialize as initialize_nlp
from storage import inbox
from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import upgrade
from storage.models import OutboxMessage
from webhooks.generic.client import PushClient

log = logging.getLogger(__name__)
KEYWORDS_POLL_S = 15.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings.resolved_database_url)
        self.factory = create_session_factory(self.engine)
        self.dialog = DialogEngine(self.factory, settings)
        self.inbox = inbox.InboxWriter(self.engine)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        self.push = PushClient(self.http)
        self.telegram = None
        self.outbox: OutboxWorker | None = None
        self.scheduler = None  # community.scheduler.SchedulerService, when running background work
        self.fanout = BroadcastFanout(self.factory, wake_outbox=self.wake_outbox)
        self.ready = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await upgrade(self.engine)
        # Lexicons are compiled before /readyz turns true, never lazily inside a request.
        await asyncio.to_thread(initialize_nlp, self.settings.data_dir / "cache")
        await self.reload_keywords(force=True)
        senders: dict[str, Sender] = {}
        for name in self.settings.generic_channels:
            senders[f"generic:{name}"] = self._generic_sender(name)
        if self.settings.telegram_enabled:
            from bot.telegram.setup import TelegramFront

            self.telegram = TelegramFront(self.settings, self.engine, self.dialog, self.inbox)
            senders["telegram"] = self.telegram.send
        if self.settings.wecom_enabled:
            from webhooks.wecom.client import WecomClient

            senders["wecom"] = WecomClient.from_settings(self.settings, self.http).send
        if self.settings.wechat_enabled:
            from webhooks.wechat.client import WechatClient

            senders["wechat"] = WechatClient.from_settings(self.settings, self.http).send
        if self.settings.dingtalk_enabled:
            from webhooks.dingtalk.client import client_for

            senders["dingtalk"] = client_for(self).send  # shares session webhooks with the view
        if self.settings.feishu_enabled:
            from webhooks.feishu.client import FeishuClient

            senders["feishu"] = FeishuClient.from_settings(self.settings, self.http).send
        from webhooks.robots import robot_senders  # organizations' group robots: always on

        senders.update(robot_senders(self.settings, self.http))
        self.outbox = OutboxWorker(
            self.factory, senders, self.settings.outbox_poll_seconds, bulk=self.is_leader
        )
        if self.settings.run_background:
            from community.scheduler import SchedulerService

            self.scheduler = SchedulerService(
                self.factory,
                self.settings.resolved_database_url,
                holder=f"{socket.gethostname()}:{os.getpid()}",
                on_leader_change=self._leader_changed,
            )
            await self.scheduler.start()
            self._tasks.append(asyncio.create_task(self.outbox.run(), name="outbox"))
            self._tasks.append(asyncio.create_task(self._fanout_loop(), name="fanout"))
            self._tasks.append(asyncio.create_task(self._recover_loop(), name="inbox-recovery"))
            self._tasks.append(asyncio.create_task(self._keywords_loop(), name="keywords"))
            if self.telegram is not None:
                await self._start_telegram()
        self.ready = True

    async def _start_telegram(self) -> None:
        assert self.telegram is not None
        mode = self.settings.telegram_mode
        if mode == "auto":
            mode = "webhook" if self.settings.public_url else "polling"
        if mode == "webhook":
            await self.telegram.start_webhook(self.settings.public_url)
        else:
            self._tasks.append(asyncio.create_task(self.telegram.run_polling(), name="tg-poll"))

    def _generic_sender(self, name: str) -> Sender:
        channel = self.settings.generic_channels[name]

        async def send(message: OutboxMessage) -> SendResult:
            if not channel.push_url:
                return SendResult(ok=False, permanent=True, error="no push_url")
            payload = {"user_id": message.target, "text": message.text, "buttons": message.buttons}
            result = await self.push.push(
                channel.push_url, channel.secret.get_secret_value(), payload, message.msg_id
            )
            return SendResult(
                ok=result.ok,
                gone=result.gone,
                permanent=result.permanent,
                retry_after_s=result.retry_after_s,
                error=result.error,
            )

        return send

    async def reload_keywords(self, *, force: bool = False) -> bool:
        """Apply staff keyword changes (this process's or another's) to the classifier."""
        async with transaction(self.factory) as session:
            return await reload_classifier(session, force=force)

    async def _keywords_loop(self) -> None:
        while True:
            await asyncio.sleep(KEYWORDS_POLL_S)
            try:
                await self.reload_keywords()
            except Exception:  # keep the loop alive
                log.exception("keyword reload failed")

    def wake_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.wake()

    def is_leader(self) -> bool:
        """True in the process that holds the scheduler lease (or runs no scheduler at all)."""
        return self.scheduler is None or self.scheduler.is_leader

    def _leader_changed(self, leader: bool) -> None:
        log.info("scheduler leadership changed", extra={"leader": leader})
        if leader:
            self.fanout.wake()
            self.wake_outbox()

    def wake_broadcasts(self) -> None:
        """A broadcast was started: fan it out now rather than at the next poll."""
        self.fanout.wake()

    async def _fanout_loop(self) -> None:
        while True:
            self.fanout._wake.clear()  # before the pass: a wake during it means run again
            if self.is_leader():
                try:
                    await self.fanout.run_once()
                except Exception:
                    log.exception("broadcast fan-out failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.fanout._wake.wait(), self.fanout.poll_seconds)

    async def _recover_loop(self) -> None:
        """Replay inbound events stored but never processed (a crash between ack and work)."""
        while True:
            try:
                if self.telegram is not None:
                    await self.telegram.recover(self.settings.inbox_recovery_seconds)
                await self._fail_orphans()
            except Exception:
                log.exception("inbox recovery failed")
            await asyncio.sleep(self.settings.inbox_recovery_seconds)

    async def _fail_orphans(self) -> None:
        # Generic-channel events are answered synchronously; one left pending means the
        # process died mid-dialog. The bridge retries with the same webhook-id and gets
        # the duplicate answer, so mark it failed for the staff to see.
        rows = await inbox.stale_pending(self.engine, self.settings.inbox_recovery_seconds * 4)
        for row in rows:
            if row["source"].startswith("generic:"):
                await inbox.finish_event(self.engine, row["id"], error="interrupted")

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.telegram is not None:
            await self.telegram.close()
        await self.inbox.close()
        await self.http.aclose()
        await self.engine.dispose()
