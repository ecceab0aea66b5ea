"""End to end: a broadcast through the real Telegram sender (an aiogram Bot) to the fake Bot
API server enforcing Telegram's limits; every chat gets its notice exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from bot.engine import DialogEngine
from bot.telegram.setup import TelegramFront
from community.broadcasts import Audience, BroadcastFanout, broadcast_progress, start_broadcast
from community.catalog import t
from community.notify import Button
from community.outbox import OutboxWorker
from linli.settings import Settings
from storage.db import transaction
from storage.models import Identity
from tests.broadcast.conftest import add_communities, add_resident
from tests.support.fake_telegram import FakeTelegram

GROUP = -100777


async def test_broadcast_to_telegram_with_limits_on(
    database_url: str, factory, tmp_path: Path
) -> None:
    [home] = await add_communities(factory, "桂花社区")
    private = [5000 + i for i in range(40)]
    for chat in private:
        await add_resident(factory, community_id=home, identities=(("telegram", str(chat)),))
    for _ in range(4):  # four residents whose notices go to one group chat
        await add_resident(factory, community_id=home, identities=(("telegram", str(GROUP)),))
    _, [blocked] = await add_resident(
        factory, community_id=home, identities=(("telegram", "6666"),)
    )
    async with transaction(factory) as session:
        broadcast = await start_broadcast(
            session,
            kind="announcement",
            text="【桂花社区】周六上午九点，社区广场义诊。",
            buttons=[Button("我要报名", "act.1")],
            audience=Audience(community_ids=frozenset({home})),
            created_by="staff:7",
        )

    async with FakeTelegram(enforce_limits=True) as fake:
        fake.block_chat(6666)
        fake.rate_limit(retry_after=1, times=1)  # the very first send is told to wait 1 s
        settings = Settings(
            env="test",
            data_dir=tmp_path,
            database_url=database_url,
            telegram_token="42:TEST",
            telegram_api_url=fake.base_url,
        )
        front = TelegramFront(settings, factory.kw["bind"], DialogEngine(factory, settings))
        worker = OutboxWorker(factory, {"telegram": front.send}, 0.05)
        fanout = BroadcastFanout(factory, wake_outbox=worker.wake, poll_seconds=0.05)
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(fanout.run())]
        try:
            for _ in range(1500):  # at most 30 s; ~3 s at Telegram's pace
                async with transaction(factory) as session:
                    progress = await broadcast_progress(session, broadcast.id)
                if progress.status == "done":
                    break
                await asyncio.sleep(0.02)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await front.close()

    assert (progress.status, progress.total) == ("done", 45)
    assert (progress.sent, progress.gone, progress.failed, progress.pending) == (44, 1, 0, 0)
    arrived = fake.delivery_counts()
    text = "【桂花社区】周六上午九点，社区广场义诊。\n\n" + t("broadcast.footer")
    assert {chat: n for (chat, body), n in arrived.items() if body == text} == {
        **dict.fromkeys(private, 1),
        GROUP: 4,  # one per resident in the group: no duplicate, no miss
    }
    assert sum(arrived.values()) == 44
    # Our pacing kept inside every limit: the only 429 was the one forced above.
    assert fake.throttled == 1
    [markup] = {str(m.get("reply_markup")) for m in fake.sent_messages()}
    assert "act.1" in markup
    async with transaction(factory) as session:
        identity = await session.scalar(select(Identity).where(Identity.id == blocked))
    assert identity is not None and identity.reachable is False
