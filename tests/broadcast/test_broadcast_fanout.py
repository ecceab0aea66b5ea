"""Who a broadcast reaches, on which channel and when: the fan-out into the outbox."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select, update

from community.broadcasts import (
    Audience,
    BroadcastFanout,
    broadcast_progress,
    cancel_broadcast,
    start_broadcast,
)
from community.catalog import t
from community.errors import DomainError, NotFound
from community.notify import BULK_LANE, Button
from storage.db import transaction
from storage.models import AuditLog, Broadcast, Identity, OutboxMessage, WebMessage
from tests.broadcast.conftest import DAYTIME, add_communities, add_resident, at

CULTURE = frozenset({"culture"})


async def start(factory, audience: Audience, text: str = "周六上午义诊，欢迎参加。") -> int:
    async with transaction(factory) as session:
        broadcast = await start_broadcast(
            session,
            kind="announcement",
            text=text,
            buttons=[Button("我要报名", "act.1")],
            audience=audience,
            created_by="staff:7",
        )
        return broadcast.id


async def rows_of(factory, broadcast_id: int) -> list[OutboxMessage]:
    async with transaction(factory) as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.broadcast_id == broadcast_id)
                .order_by(OutboxMessage.id)
            )
        )


def user_of(row: OutboxMessage) -> int:
    return int((row.dedupe_key or "").rsplit(":", 1)[1])


async def fan_out(factory, *, chunk: int = 1000, at: datetime = DAYTIME) -> int:
    return await BroadcastFanout(factory, chunk=chunk, clock=lambda: at).run_once()


async def test_audience_category_times_community(factory) -> None:
    home, other = await add_communities(factory, "桂花社区", "兰花社区")
    lives_here, _ = await add_resident(factory, community_id=home, categories=("culture",))
    follows_here, _ = await add_resident(
        factory, community_id=other, categories=("culture", "legal"), follows=(home,)
    )
    await add_resident(factory, community_id=home, categories=("legal",))  # other category
    await add_resident(factory, community_id=other, categories=("culture",))  # elsewhere
    await add_resident(factory, community_id=home, categories=("culture",), paused=True)
    await add_resident(factory, community_id=home, categories=("culture",), deleted_at=DAYTIME)
    gone, [gone_identity] = await add_resident(factory, community_id=home, categories=("culture",))
    two_channels, _ = await add_resident(
        factory,
        community_id=home,
        categories=("culture",),
        identities=(("telegram", "5001"), ("generic:bridge", "g-1")),
    )
    newest_blocked, [_, blocked] = await add_resident(
        factory,
        community_id=home,
        categories=("culture",),
        identities=(("telegram", "5002"), ("generic:bridge", "g-2")),
    )
    on_web, [web_identity] = await add_resident(
        factory, community_id=home, categories=("culture",), identities=(("web", ""),)
    )
    async with transaction(factory) as session:
        await session.execute(
            update(Identity)
            .where(Identity.id.in_([gone_identity, blocked]))
            .values(reachable=False)
        )

    broadcast_id = await start(
        factory, Audience(categories=CULTURE, community_ids=frozenset({home}))
    )
    assert await fan_out(factory) == 5
    rows = await rows_of(factory, broadcast_id)
    by_user = {user_of(r): r for r in rows}
    assert set(by_user) == {lives_here, follows_here, two_channels, newest_blocked, on_web}
    assert gone not in by_user  # no reachable identity left
    # The most recently created reachable identity is the one used.
    assert (by_user[two_channels].channel, by_user[two_channels].target) == (
        "generic:bridge",
        "g-1",
    )
    assert (by_user[newest_blocked].channel, by_user[newest_blocked].target) == (
        "telegram",
        "5002",
    )
    assert all(r.priority == BULK_LANE for r in rows)
    assert all(r.text.endswith(t("broadcast.footer")) for r in rows)  # how to 退订
    assert by_user[lives_here].buttons == [{"text": "我要报名", "payload": "act.1"}]
    # The web chat gets its transcript row at once; the outbox row only counts it.
    assert by_user[on_web].status == "sent"
    async with transaction(factory) as session:
        [message] = await session.scalars(
            select(WebMessage).where(WebMessage.identity_id == web_identity)
        )
        assert message.direction == "out" and message.text.startswith("周六上午义诊")
        progress = await broadcast_progress(session, broadcast_id)
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "broadcast.start"))
    assert (progress.status, progress.total, progress.sent, progress.pending) == (
        "sending",
        5,
        1,
        4,
    )
    assert audit is not None and audit.actor == "staff:7"
    assert audit.target == f"broadcast:{broadcast_id}"


async def test_community_only_and_explicit_recipients(factory) -> None:
    home, other = await add_communities(factory, "桂花社区", "兰花社区")
    neighbour, _ = await add_resident(factory, community_id=home)
    visitor, _ = await add_resident(factory, community_id=other, follows=(home,))
    await add_resident(factory, community_id=other)
    everyone_here = await start(factory, Audience(community_ids=frozenset({home})))
    await fan_out(factory)
    assert {user_of(r) for r in await rows_of(factory, everyone_here)} == {neighbour, visitor}

    # Explicit ids advance by window: a window where everyone paused is not the end.
    paused = [(await add_resident(factory, community_id=home, paused=True))[0] for _ in range(2)]
    active = [(await add_resident(factory, community_id=home))[0] for _ in range(2)]
    signed_up = await start(
        factory, Audience(user_ids=frozenset(paused + active)), text="活动改到周日。"
    )
    await fan_out(factory, chunk=2)
    rows = await rows_of(factory, signed_up)
    assert sorted(user_of(r) for r in rows) == sorted(active)
    assert all(r.text == "活动改到周日。" for r in rows)  # no 退订 line for participants


async def test_quiet_hours_hold_bulk_notices_until_they_end(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    defaults, _ = await add_resident(factory, community_id=home, quiet=None)  # 21:00–08:00
    no_quiet, _ = await add_resident(factory, community_id=home, quiet=(0, 0))
    late_sleeper, _ = await add_resident(factory, community_id=home, quiet=(22 * 60, 6 * 60))
    afternoon_nap, _ = await add_resident(factory, community_id=home, quiet=(13 * 60, 15 * 60))
    on_web, _ = await add_resident(
        factory, community_id=home, quiet=None, identities=(("web", ""),)
    )
    broadcast_id = await start(factory, Audience(community_ids=frozenset({home})))
    evening = at(13, 30)  # 21:30 in Shanghai
    await fan_out(factory, at=evening)
    due = {user_of(r): r.next_attempt_at for r in await rows_of(factory, broadcast_id)}
    assert due[defaults] == at(0, days=1)  # 08:00 the next morning
    assert due[no_quiet] == evening
    assert due[late_sleeper] == evening  # 21:30 is before their 22:00
    assert due[afternoon_nap] == evening
    assert due[on_web] == evening  # a transcript row rings nothing

    # At 14:00 Shanghai time the nap is on, the night is not.
    other = await start(factory, Audience(community_ids=frozenset({home})))
    await fan_out(factory, at=at(6))
    due = {user_of(r): r.next_attempt_at for r in await rows_of(factory, other)}
    assert due[afternoon_nap] == at(7)
    assert due[defaults] == at(6)


async def test_repeated_chunk_writes_nothing_twice(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(4):
        await add_resident(factory, community_id=home)
    await add_resident(factory, community_id=home, identities=(("web", ""),))
    broadcast_id = await start(factory, Audience(community_ids=frozenset({home})))
    assert await fan_out(factory, chunk=2) == 5
    # As if the cursor update had been lost: the same chunks run again.
    async with transaction(factory) as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(status="planning", fanout_cursor=0)
        )
    assert await fan_out(factory, chunk=2) == 0
    rows = await rows_of(factory, broadcast_id)
    assert len(rows) == len({r.dedupe_key for r in rows}) == 5
    async with transaction(factory) as session:
        transcript = await session.scalar(select(func.count()).select_from(WebMessage))
        progress = await broadcast_progress(session, broadcast_id)
    assert transcript == 1
    assert progress.total == 5


async def test_fanout_resumes_after_a_crash_between_chunks(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    users = [(await add_resident(factory, community_id=home))[0] for _ in range(7)]
    broadcast_id = await start(factory, Audience(community_ids=frozenset({home})))
    woken: list[int] = []

    def killed(broadcast: int, total: int) -> None:
        raise RuntimeError("kill -9")

    crashing = BroadcastFanout(factory, chunk=3, on_progress=killed, clock=lambda: DAYTIME)
    with pytest.raises(RuntimeError):
        await crashing.run_once()
    async with transaction(factory) as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert (broadcast.status, broadcast.total, broadcast.fanout_cursor) == (
            "planning",
            3,
            users[2],
        )
    restarted = BroadcastFanout(
        factory, chunk=3, wake_outbox=lambda: woken.append(1), clock=lambda: DAYTIME
    )
    assert await restarted.run_once() == 4
    rows = await rows_of(factory, broadcast_id)
    assert sorted(user_of(r) for r in rows) == users  # nobody skipped, nobody twice
    assert woken  # sending starts with the chunks, not after the whole fan-out
    async with transaction(factory) as session:
        progress = await broadcast_progress(session, broadcast_id)
    assert (progress.status, progress.total, progress.pending) == ("sending", 7, 7)


async def test_progress_cancel_and_done(factory) -> None:
    [home] = await add_communities(factory, "桂花社区")
    for _ in range(5):
        await add_resident(factory, community_id=home)
    broadcast_id = await start(factory, Audience(community_ids=frozenset({home})))
    await fan_out(factory)
    rows = await rows_of(factory, broadcast_id)
    async with transaction(factory) as session:
        for row, status in zip(rows, ("sent", "failed", "gone", "sending"), strict=False):
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(status=status)
            )
        progress = await broadcast_progress(session, broadcast_id)
    assert (progress.sent, progress.failed, progress.gone, progress.pending) == (1, 1, 1, 2)
    assert not progress.finished

    async with transaction(factory) as session:
        await cancel_broadcast(session, broadcast_id, "staff:7")
    async with transaction(factory) as session:
        progress = await broadcast_progress(session, broadcast_id)
        await cancel_broadcast(session, broadcast_id, "staff:7")  # twice: nothing more
        audit = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "broadcast.cancel"))
        )
    # The pending row is dropped; the one being sent may still go.
    assert (progress.status, progress.cancelled, progress.pending) == ("cancelled", 1, 1)
    assert progress.finished
    assert [a.detail for a in audit] == [{"dropped": 1}]

    done = await start(factory, Audience(community_ids=frozenset({home})))
    await fan_out(factory)
    async with transaction(factory) as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.broadcast_id == done).values(status="sent")
        )
    await fan_out(factory)  # the fan-out worker also closes delivered broadcasts
    async with transaction(factory) as session:
        progress = await broadcast_progress(session, done)
        assert (progress.status, progress.sent) == ("done", 5)
        with pytest.raises(DomainError) as refused:
            await cancel_broadcast(session, done, "staff:7")
        assert refused.value.key == "broadcast.error.finished"
        with pytest.raises(NotFound):
            await broadcast_progress(session, 999)


@pytest.mark.parametrize(
    ("kind", "text", "audience", "key"),
    [
        ("flyer", "有活动", Audience(categories=CULTURE), "broadcast.error.unknown_kind"),
        ("announcement", "  ", Audience(categories=CULTURE), "broadcast.error.empty_text"),
        ("announcement", "有活动", Audience(), "broadcast.error.no_audience"),
    ],
)
async def test_refusals_name_a_catalog_text(factory, kind, text, audience, key) -> None:
    async with transaction(factory) as session:
        with pytest.raises(DomainError) as refused:
            await start_broadcast(
                session,
                kind=kind,
                text=text,
                buttons=[],
                audience=audience,
                created_by="staff:7",
            )
    assert refused.value.key == key
    assert t(key, **refused.value.params)


async def test_nobody_to_tell_is_done_at_once(factory) -> None:
    await add_communities(factory, "桂花社区")
    broadcast_id = await start(factory, Audience(user_ids=frozenset()))
    assert await fan_out(factory) == 0
    async with transaction(factory) as session:
        progress = await broadcast_progress(session, broadcast_id)
    assert (progress.status, progress.total) == ("done", 0)
