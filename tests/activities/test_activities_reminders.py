"""Reminders, sign-up closing and waiting-list promotion, driven by a controllable clock.

The job functions are called directly (as the scheduler would, twice where a repeat must be
harmless); ``test_activities_scheduler`` covers that the scheduler itself calls them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from community import scheduler
from community.activities import edit_activity, sign_up
from storage.db import transaction
from storage.models import Activity
from tests.activities.world import ORG_A, START, World, notices, published, signups


@pytest.fixture(autouse=True)
def _jobs_use_world(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler, "_factory", world.factory)


async def _sign_up(world: World, activity_id: int, *users: int) -> None:
    for user in users:
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user, notify=False)


async def _reminders(world: World, user_id: int) -> list[str]:
    return [
        n.dedupe_key.split(":")[0]
        for n in await notices(world, user_id)
        if n.dedupe_key.startswith("remind")
    ]


async def test_each_reminder_is_sent_once(world: World) -> None:
    activity_id = await published(world, capacity=2)
    a, b, waiting = world.users[:3]
    await _sign_up(world, activity_id, a, b, waiting)
    starts = START + timedelta(days=3)
    assert not any((await scheduler.run_sweep()).values())  # nothing is due yet

    world.clock.set(starts - timedelta(hours=24))
    assert await scheduler.run_reminders(activity_id) == 2
    assert await scheduler.run_reminders(activity_id) == 0  # the job fired twice
    assert (await scheduler.run_sweep())["reminded"] == 0  # and the sweep ran too
    world.clock.set(starts - timedelta(hours=1))
    assert (await scheduler.run_sweep())["reminded"] == 2
    assert await scheduler.run_reminders(activity_id) == 0
    world.clock.set(starts - timedelta(minutes=1))
    assert (await scheduler.run_sweep())["reminded"] == 0

    for user in (a, b):
        assert await _reminders(world, user) == ["remind24h", "remind1h"]
    assert await _reminders(world, waiting) == []  # the waiting list gets no reminder
    [first, second] = [n for n in await notices(world, a) if n.dedupe_key.startswith("remind")]
    assert "11月26日（周四）10:00–12:00" in first.text and "1 小时后" in second.text
    rows = await signups(world, activity_id)
    assert rows[a].reminded_24h_at == starts - timedelta(hours=24)
    assert rows[a].reminded_1h_at == starts - timedelta(hours=1)


async def test_the_sweep_catches_up_after_the_process_was_down(world: World) -> None:
    activity_id = await published(world)
    a, b = world.users[:2]
    await _sign_up(world, activity_id, a, b)
    # Nothing ran for three days; the scheduler comes back 30 minutes before the start.
    world.clock.set(START + timedelta(days=3) - timedelta(minutes=30))
    assert (await scheduler.run_sweep())["reminded"] == 2
    assert (await scheduler.run_sweep())["reminded"] == 0
    for user in (a, b):
        assert await _reminders(world, user) == ["remind1h"]  # the stale 24 h one is skipped
    world.clock.advance(hours=1)  # started: nothing more
    assert (await scheduler.run_sweep())["reminded"] == 0


async def test_late_signups_and_time_changes(world: World) -> None:
    activity_id = await published(world)
    starts = START + timedelta(days=3)
    early, late = world.users[:2]
    await _sign_up(world, activity_id, early)
    world.clock.set(starts - timedelta(hours=20))
    await scheduler.run_sweep()
    await _sign_up(world, activity_id, late)  # after the 24 h mark: no 24 h reminder
    assert (await scheduler.run_sweep())["reminded"] == 0
    assert await _reminders(world, early) == ["remind24h"]

    moved = starts + timedelta(days=2)
    async with transaction(world.factory) as session:
        await edit_activity(
            session,
            activity_id=activity_id,
            org_id=world.org_id,
            actor=ORG_A,
            changes={"starts_at": moved, "ends_at": moved + timedelta(hours=2)},
        )
    world.clock.set(moved - timedelta(hours=24))
    assert (await scheduler.run_sweep())["reminded"] == 2  # the new date is reminded again
    assert await _reminders(world, early) == ["remind24h", "remind24h"]
    assert await _reminders(world, late) == ["remind24h"]


async def test_reminders_respect_quiet_hours(world: World) -> None:
    # Friday 07:30 local: the 24 h reminder (Thursday 07:30) waits until 08:00;
    # the 1 h one (06:30) would arrive after the start, so it is dropped, not sent at night.
    starts = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    activity_id = await published(world, starts_at=starts, ends_at=starts + timedelta(hours=2))
    user = world.users[0]
    await _sign_up(world, activity_id, user)
    world.clock.set(starts - timedelta(hours=24))
    assert (await scheduler.run_sweep())["reminded"] == 1
    [held] = await notices(world, user)
    assert held.next_attempt_at == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 08:00 local
    world.clock.set(starts - timedelta(hours=1))
    assert (await scheduler.run_sweep())["reminded"] == 1
    assert len(await notices(world, user)) == 1
    assert (await signups(world, activity_id))[user].reminded_1h_at is not None


async def test_deadline_closing_is_announced_once(world: World) -> None:
    deadline = START + timedelta(days=2)
    activity_id = await published(world, capacity=1, signup_deadline=deadline)
    await _sign_up(world, activity_id, *world.users[:3])
    assert await scheduler.run_deadline(activity_id) is False  # not yet
    world.clock.set(deadline + timedelta(minutes=1))
    assert await scheduler.run_deadline(activity_id) is True
    assert await scheduler.run_deadline(activity_id) is False
    assert (await scheduler.run_sweep())["closed"] == 0
    org_notices = [n for n in await notices(world) if n.target == "org-a"]
    assert len(org_notices) == 1
    assert "报名已截止" in org_notices[0].text and "正式报名 1 人，候补 2 人" in org_notices[0].text


async def test_the_sweep_fills_free_seats_from_the_waiting_list(world: World) -> None:
    activity_id = await published(world, capacity=1)
    first, second = world.users[:2]
    await _sign_up(world, activity_id, first, second)
    async with transaction(world.factory) as session:  # seats freed without a promotion
        await session.execute(update(Activity).where(Activity.id == activity_id).values(capacity=2))
    assert (await scheduler.run_sweep())["promoted"] == 1
    assert (await scheduler.run_sweep())["promoted"] == 0
    assert (await signups(world, activity_id))[second].status == "confirmed"
    assert (
        len([n for n in await notices(world, second) if n.dedupe_key.startswith("promoted:")]) == 1
    )
