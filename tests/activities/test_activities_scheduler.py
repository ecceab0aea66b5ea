"""The persisted scheduler: job store across restarts, one leader per database, takeover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

from community import scheduler
from community.activities import sign_up
from community.scheduler import (
    LEASE_NAME,
    SchedulerService,
    acquire_lease,
    job_store_url,
    release_lease,
    schedule_activity_jobs,
    unschedule_activity_jobs,
)
from storage.db import transaction
from tests.activities.world import START, World, get_activity, notices, published

Start = Callable[[str], Awaitable[SchedulerService]]  # starts a service by holder name


@pytest.mark.parametrize(
    ("app_url", "store_url"),
    [
        (
            "sqlite+aiosqlite:////srv/linli/data/linli.db",
            "sqlite:////srv/linli/data/linli-scheduler.db",
        ),
        ("sqlite+aiosqlite://", "sqlite://"),
        (
            "postgresql+asyncpg://linli:pw@db:5432/linli",
            "postgresql+psycopg://linli:pw@db:5432/linli",
        ),
        ("postgresql://linli@db/linli", "postgresql+psycopg://linli@db/linli"),
    ],
)
def test_job_store_url_is_derived_from_the_app_url(app_url: str, store_url: str) -> None:
    assert job_store_url(app_url) == store_url


@pytest.fixture
async def services(world: World) -> AsyncIterator[Start]:
    """Start services by holder name (renewal left to the tests); all stopped at the end."""
    started: list[SchedulerService] = []

    async def start(holder: str) -> SchedulerService:
        service = SchedulerService(
            world.factory, world.database_url, holder=holder, renew_seconds=3600
        )
        await service.start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in reversed(started):
            await service.stop()


async def _until(check: Callable[[], Awaitable[bool]]) -> bool:
    """Wait for the scheduler's asynchronous work (up to 10 s); True once ``check`` holds."""
    for _ in range(200):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_one_leader_and_takeover(world: World, services: Start) -> None:
    first = await services("proc-1")
    second = await services("proc-2")
    assert (first.is_leader, second.is_leader) == (True, False)
    assert first.scheduler is not None and first.scheduler.state == STATE_RUNNING
    assert second.scheduler is not None and second.scheduler.state == STATE_PAUSED
    assert await first.elect_once() and not await second.elect_once()  # renewal keeps it
    changes: list[bool] = []
    second.on_leader_change = changes.append

    await first.stop()  # a clean stop gives the lease up at once
    assert await second.elect_once() and second.scheduler.state == STATE_RUNNING

    third = await services("proc-3")
    assert not third.is_leader
    # proc-2 "crashes": it stops renewing. Within the lease nobody else takes over …
    world.clock.advance(seconds=29)
    assert not await third.elect_once()
    # … after it, the standby does, and the old holder stands down when it wakes up.
    world.clock.advance(seconds=2)
    assert await third.elect_once() and third.scheduler is not None
    assert third.scheduler.state == STATE_RUNNING
    assert not await second.elect_once() and second.scheduler.state == STATE_PAUSED
    assert changes == [True, False]


async def test_concurrent_lease_attempts_elect_exactly_one(world: World) -> None:
    ttl = timedelta(seconds=30)
    results = await asyncio.gather(
        *(acquire_lease(world.factory, "race", f"h{i}", ttl) for i in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]
    winner = f"h{results.index(True)}"
    await release_lease(world.factory, "race", "h-other")  # not the holder: nothing happens
    assert not await acquire_lease(world.factory, "race", "h-new", ttl)
    await release_lease(world.factory, "race", winner)
    assert await acquire_lease(world.factory, "race", "h-new", ttl)


async def test_jobs_persist_across_restarts_and_run_once_on_the_leader(
    world: World, services: Start
) -> None:
    # Another process holds the lease, so the schedulers here stay paused (standby).
    assert await acquire_lease(world.factory, LEASE_NAME, "elsewhere", timedelta(days=30))
    activity_id = await published(world, signup_deadline=START + timedelta(days=2))
    for user in world.users[:2]:
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user, notify=False)
    activity = await get_activity(world, activity_id)

    standby = await services("proc-1")
    planned = schedule_activity_jobs(activity)
    assert planned == [
        f"remind:24h:{activity_id}",
        f"remind:1h:{activity_id}",
        f"deadline:{activity_id}",
    ]
    assert standby.scheduler is not None
    job = standby.scheduler.get_job(f"remind:1h:{activity_id}")
    assert job is not None and job.next_run_time == activity.starts_at - timedelta(hours=1)
    # A job whose moment (by the real clock) has come while nobody leads.
    standby.scheduler.add_job(
        scheduler.run_reminders,
        "date",
        run_date=datetime.now(UTC) - timedelta(minutes=1),
        args=[activity_id],
        id="due-now",
    )
    await standby.stop()  # the process restarts

    world.clock.set(activity.starts_at - timedelta(minutes=30))  # the 1 h reminders are due
    restarted = await services("proc-1b")
    assert restarted.scheduler is not None
    assert {j.id for j in restarted.scheduler.get_jobs()} >= {*planned, "due-now", "sweep"}
    await asyncio.sleep(0.2)
    assert await notices(world) == []  # a standby runs nothing

    await release_lease(world.factory, LEASE_NAME, "elsewhere")
    assert await restarted.elect_once()  # becomes leader: due jobs run now, once

    async def both_reminded() -> bool:
        return len(await notices(world)) == 2

    assert await _until(both_reminded)
    assert restarted.scheduler.get_job("due-now") is None  # a date job runs once
    await restarted.stop()
    again = await services("proc-1c")
    assert again.is_leader and again.scheduler is not None
    assert again.scheduler.get_job("due-now") is None
    await asyncio.sleep(0.2)
    assert len(await notices(world)) == 2

    unschedule_activity_jobs(activity_id)
    assert {j.id for j in again.scheduler.get_jobs()} == {"sweep"}
