"""The work behind the scheduled jobs, decided from the database alone.

Each function looks at the current state and does what is due, marking what it did on the
row (``reminded_24h_at``, ``reminded_1h_at``, an audit entry for a closed sign-up list) in
the same transaction as the notice it writes. So a job that fires twice, a job and the
sweep racing, or a sweep after a process was down for hours all send each notice once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.activities.signups import promote_waitlist
from community.audit import SYSTEM, record_audit
from community.catalog import t
from community.interests import deliver_notice
from community.notify import Reply, notify_target_spec
from storage.models import Activity, ActivitySignup, AuditLog, Organization

DEADLINE_LOOKBACK = timedelta(days=1)  # a closing older than this is not announced late


async def send_due_reminders(
    session: AsyncSession, *, activity_id: int | None = None, limit: int = 200
) -> int:
    """Send the 24 h and 1 h reminders whose moment has come; returns sign-ups handled.

    When both are due (the process was down, or the reminder was held), only the 1 h one is
    sent. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so a job and the
    sweep never work on the same sign-up at once.
    """
    now = clock.now()
    stmt = (
        select(ActivitySignup, Activity)
        .join(Activity, Activity.id == ActivitySignup.activity_id)
        .where(
            Activity.status == c.PUBLISHED,
            Activity.starts_at > now,
            Activity.starts_at <= now + c.REMIND_24H,
            ActivitySignup.status == c.CONFIRMED,
            or_(
                ActivitySignup.reminded_24h_at.is_(None),
                (ActivitySignup.reminded_1h_at.is_(None))
                & (Activity.starts_at <= now + c.REMIND_1H),
            ),
        )
        .order_by(Activity.starts_at, ActivitySignup.id)
        .limit(limit)
        .with_for_update(of=ActivitySignup, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if activity_id is not None:
        stmt = stmt.where(Activity.id == activity_id)
    handled = 0
    for signup, activity in (await session.execute(stmt)).all():
        one_hour = activity.starts_at - c.REMIND_1H <= now
        if one_hour and signup.reminded_1h_at is not None:
            signup.reminded_24h_at = now  # nothing left to send; do not pick it up again
            continue
        kind = "1h" if one_hour else "24h"
        when = c.format_when(activity.starts_at, activity.ends_at)
        text = t(
            f"activities.notice.remind_{kind}",
            title=activity.title,
            when=when,
            place=activity.place,
        )
        await deliver_notice(
            session,
            signup.user_id,
            Reply(text, (c.details_button(activity.id), c.cancel_button(activity.id))),
            dedupe_key=f"remind{kind}:{signup.id}:{int(activity.starts_at.timestamp())}",
            must_arrive_before=activity.starts_at,
        )
        signup.reminded_24h_at = signup.reminded_24h_at or now
        if one_hour:
            signup.reminded_1h_at = now
        handled += 1
    return handled


def _closing_target(activity: Activity) -> str:
    assert activity.signup_deadline is not None
    return f"activity:{activity.id}@{int(activity.signup_deadline.timestamp())}"


async def close_signups(session: AsyncSession, activity_id: int) -> bool:
    """At the sign-up deadline, tell the organization the final numbers (once per deadline)."""
    activity = await c.load_activity(session, activity_id, lock=True)
    now = clock.now()
    deadline = activity.signup_deadline
    if activity.status != c.PUBLISHED or deadline is None or deadline > now:
        return False
    if now >= activity.starts_at or now - deadline > DEADLINE_LOOKBACK:
        return False
    target = _closing_target(activity)
    done = await session.scalar(
        select(AuditLog.id).where(
            AuditLog.action == "activity.signups_closed", AuditLog.target == target
        )
    )
    if done is not None:
        return False
    confirmed, waiting = await c.count_signups(session, activity.id)
    org_notify = await session.scalar(
        select(Organization.notify).where(Organization.id == activity.org_id)
    )
    text = t(
        "activities.notice.deadline_org",
        title=activity.title,
        number=activity.number,
        confirmed=confirmed,
        waiting=waiting,
    )
    await notify_target_spec(session, org_notify, Reply(text), dedupe_key=f"closed:{target}")
    record_audit(
        session,
        SYSTEM,
        "activity.signups_closed",
        target,
        {"confirmed": confirmed, "waiting": waiting},
    )
    return True


async def due_closings(session: AsyncSession, limit: int = 100) -> list[int]:
    """Activities whose deadline passed recently and whose closing was not announced yet."""
    now = clock.now()
    candidates = (
        await session.execute(
            select(Activity.id, Activity.signup_deadline)
            .where(
                Activity.status == c.PUBLISHED,
                Activity.starts_at > now,
                Activity.signup_deadline <= now,
                Activity.signup_deadline > now - DEADLINE_LOOKBACK,
            )
            .order_by(Activity.signup_deadline)
            .limit(limit)
        )
    ).all()
    if not candidates:
        return []
    targets = {f"activity:{i}@{int(d.timestamp())}": i for i, d in candidates}
    done = set(
        await session.scalars(
            select(AuditLog.target).where(
                AuditLog.action == "activity.signups_closed", AuditLog.target.in_(targets)
            )
        )
    )
    return [i for target, i in targets.items() if target not in done]


async def waitlists_with_room(session: AsyncSession, limit: int = 100) -> list[int]:
    """Published, not yet started activities that have someone waiting (seats checked later)."""
    now = clock.now()
    waiting = exists().where(
        ActivitySignup.activity_id == Activity.id, ActivitySignup.status == c.WAITLIST
    )
    return list(
        await session.scalars(
            select(Activity.id)
            .where(Activity.status == c.PUBLISHED, Activity.starts_at > now, waiting)
            .order_by(Activity.starts_at)
            .limit(limit)
        )
    )


async def promote_activity_waitlist(session: AsyncSession, activity_id: int) -> int:
    activity = await c.load_activity(session, activity_id, lock=True)
    return len(await promote_waitlist(session, activity))


__all__ = [
    "close_signups",
    "due_closings",
    "promote_activity_waitlist",
    "send_due_reminders",
    "waitlists_with_room",
]
