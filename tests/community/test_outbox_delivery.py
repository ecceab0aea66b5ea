"""Signed pushes through the durable outbox: delivered once, retried with the same
webhook-id, stopped (and the person marked unreachable) on 410 Gone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from community.notify import Button, Reply, Target, enqueue
from storage.db import transaction
from storage.models import Identity, OutboxMessage, User, utcnow
from tests.e2e.harness import TEST_SECRET, make_settings, running_app
from tests.support.fake_push import FakePush


async def _queue(app, address: str, text: str, key: str | None = None) -> None:
    async with transaction(app.state.runtime.factory) as session:
        await enqueue(
            session,
            Target("generic:bridge", address),
            Reply(text, (Button("接单", "oa.1"),)),
            dedupe_key=key,
        )


async def _rows(app) -> list[OutboxMessage]:
    async with transaction(app.state.runtime.factory) as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _make_due(app) -> None:
    async with transaction(app.state.runtime.factory) as session:
        await session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


async def test_push_retry_and_gone(database_url: str, tmp_path) -> None:
    async with FakePush(TEST_SECRET, [500, 200]) as bridge:
        settings = make_settings(
            database_url,
            tmp_path,
            generic_channels={"bridge": {"secret": TEST_SECRET, "push_url": bridge.url}},
        )
        async with running_app(settings, demo=False) as app:
            worker = app.state.runtime.outbox
            await _queue(app, "org-7", "【新诉求】R2611-0001", key="k1")
            await _queue(app, "org-7", "【新诉求】R2611-0001", key="k1")  # same key: once
            assert len(await _rows(app)) == 1

            await worker.drain_once()
            [row] = await _rows(app)
            assert row.status == "pending" and row.attempts == 1  # 500: retry later
            await worker.drain_once()
            assert (await _rows(app))[0].status == "pending"  # not due yet: no tight loop
            await _make_due(app)
            await worker.drain_once()
            [row] = await _rows(app)
            assert row.status == "sent" and row.attempts == 2
            first, second = bridge.received
            assert first.msg_id == second.msg_id == row.msg_id  # same webhook-id on retry
            assert second.json == {
                "user_id": "org-7",
                "text": "【新诉求】R2611-0001",
                "buttons": [{"text": "接单", "payload": "oa.1"}],
            }

            async with transaction(app.state.runtime.factory) as session:
                user = User()
                session.add(user)
                await session.flush()
                session.add(
                    Identity(user_id=user.id, channel="generic:bridge", external_id="res-9")
                )
            bridge.respond_with(410)
            await _queue(app, "res-9", "您的诉求已办结")
            await worker.drain_once()
            assert (await _rows(app))[-1].status == "gone"
            async with transaction(app.state.runtime.factory) as session:
                identity = await session.scalar(
                    select(Identity).where(Identity.external_id == "res-9")
                )
                assert identity is not None and identity.reachable is False


async def test_bad_push_signature_is_not_accepted_by_bridge(sqlite_url: str, tmp_path) -> None:
    wrong = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    async with FakePush(TEST_SECRET) as bridge:
        settings = make_settings(
            sqlite_url,
            tmp_path,
            generic_channels={"bridge": {"secret": wrong, "push_url": bridge.url}},
        )
        async with running_app(settings, demo=False) as app:
            await _queue(app, "org-1", "hello")
            await app.state.runtime.outbox.drain_once()
            [row] = await _rows(app)
            assert row.status == "failed"  # 401 from the bridge is permanent
            assert bridge.received == [] and len(bridge.rejected) == 1
