"""Scheduled jobs (reminders, sign-up closing, waiting-list promotion) that survive restarts.

APScheduler 3.11 (``AsyncIOScheduler``) keeps its jobs in a ``SQLAlchemyJobStore`` (table
``apscheduler_jobs``) on a synchronous URL derived from the app's database URL. Every
process starts a scheduler *paused*, so it can write jobs into the shared store, but only the
holder of the ``leases`` row named ``scheduler`` resumes it and runs jobs (leader election:
a conditional INSERT … ON CONFLICT DO UPDATE takes a free or expired lease or renews one's
own; the leader renews every ``renew_seconds``; a crashed leader's lease runs out and a
standby takes over at its next attempt).

Jobs are module-level functions with plain arguments and fixed ids (``remind:24h:<id>``,
``remind:1h:<id>``, ``deadline:<id>``, ``sweep``); they find the session factory in this
module's registry, set by ``SchedulerService.start`` (a factory cannot be pickled). The DB
marks make each job idempotent, and the periodic sweep does whatever is due from the DB
alone, so a job lost with a crashed process, or missed while every process was down, is
done late but once. A job added by a standby reaches the leader at its next wake-up, which
the sweep bounds to ``sweep_seconds``.

On SQLite the job store is a sibling file (``linli-scheduler.db``), not the app's file: the
job store writes synchronously on the event loop, and SQLite locks the whole file, so a
write waiting for an app transaction that is itself waiting for the loop would stall the
process until the busy timeout (measured: 2 s lost, then "database is locked").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import case, delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from community import clock, wishes
from community.activities import common as c
from community.activities import jobs
from storage.db import transaction
from storage.models import Activity, Lease

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
JOBS_TABLE = "apscheduler_jobs"
SWEEP_JOB = "sweep"
BATCH = 200
MAX_BATCHES = 50  # per sweep; the next sweep continues

_factory: async_sessionmaker[AsyncSession] | None = None
_active: SchedulerService | None = None


def job_store_url(database_url: str) -> str:
    """The synchronous URL for the job store (see the module docstring for SQLite)."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:"):
            return "sqlite://"
        file = Path(path)
        jobs_file = file.with_name(f"{file.stem}-scheduler{file.suffix or '.db'}")
        return f"sqlite:///{jobs_file}"
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"no job store for database backend {backend!r}")


# ---- leader lease ----------------------------------------------------------------------


async def acquire_lease(
    factory: async_sessionmaker[AsyncSession], name: str, holder: str, ttl: timedelta
) -> bool:
    """Take the lease if it is free or expired, or renew it if ours; True when we hold it."""
    now = clock.now()
    async with transaction(factory) as session:
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(Lease).values(
            name=name, holder=holder, expires_at=now + ttl, acquired_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": stmt.excluded.holder,
                "expires_at": stmt.excluded.expires_at,
                "acquired_at": case(
                    (Lease.holder == stmt.excluded.holder, Lease.acquired_at),
                    else_=stmt.excluded.acquired_at,
                ),
            },
            where=or_(Lease.holder == holder, Lease.expires_at < now),
        ).returning(Lease.holder)
        return (await session.execute(stmt)).scalar() == holder


async def release_lease(factory: async_sessionmaker[AsyncSession], name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), so a standby need not wait for expiry."""
    async with transaction(factory) as session:
        await session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


# ---- jobs (module-level, plain arguments) -----------------------------------------------


def _require_factory() -> async_sessionmaker[AsyncSession]:
    if _factory is None:
        raise RuntimeError("scheduler jobs need SchedulerService.start() first")
    return _factory


async def run_reminders(activity_id: int) -> int:
    """Job ``remind:24h:<id>`` / ``remind:1h:<id>``: whichever reminders are due now."""
    async with transaction(_require_factory()) as session:
        return await jobs.send_due_reminders(session, activity_id=activity_id, limit=10_000)


async def run_deadline(activity_id: int) -> bool:
    """Job ``deadline:<id>``: tell the organization the numbers at the sign-up deadline."""
    async with transaction(_require_factory()) as session:
        return await jobs.close_signups(session, activity_id)


async def run_sweep() -> dict[str, int]:
    """Job ``sweep``: everything due by the DB state, in short transactions."""
    factory = _require_factory()
    done = {"reminded": 0, "closed": 0, "promoted": 0, "claims_reminded": 0, "released": 0}
    for _ in range(MAX_BATCHES):
        async with transaction(factory) as session:
            handled = await jobs.send_due_reminders(session, limit=BATCH)
        done["reminded"] += handled
        if handled < BATCH:
            break
    async with transaction(factory) as session:
        closings = await jobs.due_closings(session)
    for activity_id in closings:
        async with transaction(factory) as session:
            done["closed"] += await jobs.close_signups(session, activity_id)
    async with transaction(factory) as session:
        waiting = await jobs.waitlists_with_room(session)
    for activity_id in waiting:
        async with transaction(factory) as session:
            done["promoted"] += await jobs.promote_activity_waitlist(session, activity_id)
    async with transaction(factory) as session:
        # Wish-wall claims that run out: reminded a day before, then back on the wall.
        reminded, released = await wishes.sweep_claims(session, clock.now())
    done["claims_reminded"], done["released"] = reminded, released
    return done


def _job_ids(activity_id: int) -> tuple[str, str, str]:
    return f"remind:24h:{activity_id}", f"remind:1h:{activity_id}", f"deadline:{activity_id}"


def _job_times(activity: Activity) -> dict[str, tuple[Any, Any]]:
    day, hour, deadline = _job_ids(activity.id)
    return {
        day: (run_reminders, activity.starts_at - c.REMIND_24H),
        hour: (run_reminders, activity.starts_at - c.REMIND_1H),
        deadline: (run_deadline, activity.signup_deadline),
    }


def schedule_activity_jobs(activity: Activity) -> list[str]:
    """(Re)plan an activity's jobs after a publish or change has been committed.

    Without a running scheduler in this process nothing is planned; the sweep of whichever
    process leads does the same work from the DB state.
    """
    service = _active
    if service is None or service.scheduler is None:
        log.debug("no scheduler in this process; the sweep will handle activity %s", activity.id)
        return []
    if activity.status != c.PUBLISHED:
        unschedule_activity_jobs(activity.id)
        return []
    now = clock.now()
    planned = []
    for job_id, (func, run_at) in _job_times(activity).items():
        if run_at is None or run_at <= now:
            with contextlib.suppress(JobLookupError):
                service.scheduler.remove_job(job_id)
            continue
        service.scheduler.add_job(
            func, "date", run_date=run_at, args=[activity.id], id=job_id, replace_existing=True
        )
        planned.append(job_id)
    return planned


def unschedule_activity_jobs(activity_id: int) -> None:
    """Drop an activity's jobs (after a cancel); unknown ids are fine."""
    service = _active
    if service is None or service.scheduler is None:
        return
    for job_id in _job_ids(activity_id):
        with contextlib.suppress(JobLookupError):
            service.scheduler.remove_job(job_id)


# ---- the service -----------------------------------------------------------------------


class SchedulerService:
    """One per process: a paused scheduler that runs jobs only while it holds the lease."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        database_url: str,
        *,
        holder: str,
        sweep_seconds: float = 60,
        lease_seconds: float = 30,
        renew_seconds: float = 10,
        on_leader_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.factory = factory
        self.store_url = job_store_url(database_url)
        self.holder = holder[:64]
        self.sweep_seconds = sweep_seconds
        self.lease_ttl = timedelta(seconds=lease_seconds)
        self.renew_seconds = renew_seconds
        # e.g. the runtime starts or stops work only the leader does (broadcast fan-out)
        self.on_leader_change = on_leader_change
        self.scheduler: AsyncIOScheduler | None = None
        self._leader = False
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    async def start(self) -> None:
        global _factory, _active
        store = SQLAlchemyJobStore(url=self.store_url, tablename=JOBS_TABLE)
        scheduler = AsyncIOScheduler(
            jobstores={"default": store},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        # Creating the job table is a synchronous DDL call: keep it off the event loop.
        await asyncio.to_thread(store.jobs_t.create, store.engine, True)
        scheduler.start(paused=True)
        scheduler.add_job(
            run_sweep, "interval", seconds=self.sweep_seconds, id=SWEEP_JOB, replace_existing=True
        )
        self.scheduler = scheduler
        _factory, _active = self.factory, self
        await self.elect_once()
        self._task = asyncio.create_task(self._lease_loop(), name="scheduler-lease")

    async def elect_once(self) -> bool:
        """Try to take or renew the lease once; resume or pause the scheduler to match."""
        try:
            leader = await acquire_lease(self.factory, LEASE_NAME, self.holder, self.lease_ttl)
        except Exception:
            log.exception("scheduler lease check failed; pausing jobs")
            leader = False
        if self.scheduler is not None and leader != self._leader:
            if leader:
                self.scheduler.resume()
            else:
                self.scheduler.pause()
            log.info("scheduler %s: %s", self.holder, "leader" if leader else "standby")
        changed, self._leader = leader != self._leader, leader
        if changed:
            self._tell(leader)
        return leader

    def _tell(self, leader: bool) -> None:
        if self.on_leader_change is None:
            return
        try:
            self.on_leader_change(leader)
        except Exception:  # a listener must not stop the lease loop
            log.exception("scheduler leadership listener failed")

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            await self.elect_once()

    async def stop(self) -> None:
        global _active
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.pause()
            scheduler.shutdown(wait=False)  # runs on the loop's next turn
            for _ in range(100):
                if not scheduler.running:
                    break
                await asyncio.sleep(0)
        if self._leader:
            self._leader = False
            with contextlib.suppress(Exception):
                await release_lease(self.factory, LEASE_NAME, self.holder)
            self._tell(False)
        if _active is self:
            _active = None


__all__ = [
    "JOBS_TABLE",
    "LEASE_NAME",
    "SchedulerService",
    "acquire_lease",
    "job_store_url",
    "release_lease",
    "run_deadline",
    "run_reminders",
    "run_sweep",
    "schedule_activity_jobs",
    "unschedule_activity_jobs",
]
