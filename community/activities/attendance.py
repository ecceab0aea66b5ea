"""Attendance and points: organizer confirmation, no-shows, finishing an activity.

Points are credited from confirmed attendance only, once: each sign-up's posting carries
the idempotency key ``activity:<activity id>:signup:<signup id>`` and its transaction id is
kept on the sign-up. ``finish_activity`` credits every attended sign-up in the one
transaction that marks the activity finished (so "finished" and "credited" cannot
disagree); an attendance confirmed after that is credited in its own transaction. A replay
of either path finds the key and credits nothing more.

A no-show is recorded and the resident is told, never silently punished: no points are
taken away, and organizers see the count (``roster.list_signups``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.audit import Actor, record_audit
from community.catalog import t
from community.errors import DomainError
from community.interests import deliver_notice
from community.notify import Reply
from community.timebank import earn_points, lock_accounts, pool_account, user_account
from storage.models import Activity, ActivitySignup


@dataclass(frozen=True)
class AttendanceResult:
    signup_id: int
    attendance: str
    hours: float | None
    points: int  # credited by this call (0 when not yet finished or nothing to credit)


@dataclass(frozen=True)
class FinishResult:
    activity_id: int
    attended: int
    points: int
    no_shows: int


def span_hours(activity: Activity) -> float:
    return (activity.ends_at - activity.starts_at).total_seconds() / 3600


def attended_hours(
    checked_in_at: datetime, checked_out_at: datetime, starts_at: datetime, ends_at: datetime
) -> float:
    """Time present within the activity's own span, rounded down to the half hour."""
    start, end = max(checked_in_at, starts_at), min(checked_out_at, ends_at)
    seconds = max((end - start).total_seconds(), 0.0)
    return math.floor(seconds / 1800) / 2


async def _signup_and_activity(
    session: AsyncSession, signup_id: int, org_id: int | None
) -> tuple[ActivitySignup, Activity]:
    activity_id = await session.scalar(
        select(ActivitySignup.activity_id).where(ActivitySignup.id == signup_id)
    )
    if activity_id is None:
        raise DomainError("activities.error.not_signed_up")
    activity = await c.load_activity(session, activity_id, lock=True)
    c.check_owner(activity, org_id)
    signup = await session.get(ActivitySignup, signup_id, populate_existing=True)
    assert signup is not None
    if activity.status == c.CANCELLED:
        raise DomainError("activities.error.cancelled")
    if activity.status == c.DRAFT:
        raise DomainError("activities.error.not_published")
    if clock.now() < activity.starts_at:
        raise DomainError("activities.error.not_started")
    if signup.points_txn_id is not None:
        raise DomainError("activities.error.points_already_credited")
    return signup, activity


async def confirm_attendance(
    session: AsyncSession,
    *,
    signup_id: int,
    org_id: int | None,
    actor: Actor,
    hours: float | None = None,
) -> AttendanceResult:
    """The organizer confirms someone came (forgot to check out, or never checked in).

    ``hours`` None: from check-in to check-out (or to now, or the end), else the whole span.
    Given hours are rounded down to the half hour and may not exceed the activity's span.
    """
    signup, activity = await _signup_and_activity(session, signup_id, org_id)
    if signup.status == c.WITHDRAWN:
        raise DomainError("activities.error.not_signed_up")
    span = span_hours(activity)
    now = clock.now()
    if hours is None:
        if signup.checked_in_at:
            left = signup.checked_out_at or min(now, activity.ends_at)
            hours = attended_hours(signup.checked_in_at, left, activity.starts_at, activity.ends_at)
        else:
            hours = math.floor(span * 2) / 2
    else:
        if not 0.5 <= hours <= span:
            raise DomainError("activities.error.bad_hours", max=math.floor(span * 2) / 2)
        hours = math.floor(hours * 2) / 2
    signup.status = c.CONFIRMED  # a waiting resident who came anyway is a participant
    signup.attendance, signup.hours = c.ATTENDED, hours
    signup.checkin_method = signup.checkin_method or "organizer"
    signup.updated_at = now
    points = (
        await credit_signup(session, activity, signup, actor)
        if activity.status == c.FINISHED
        else 0
    )
    record_audit(
        session,
        actor,
        "activity.attendance",
        f"activity:{activity.id}",
        {"signup": signup.id, "hours": hours, "points": points},
    )
    return AttendanceResult(signup.id, c.ATTENDED, hours, points)


async def mark_no_show(
    session: AsyncSession, *, signup_id: int, org_id: int | None, actor: Actor
) -> AttendanceResult:
    """Record that a confirmed resident did not come; they are told, nothing is deducted."""
    signup, activity = await _signup_and_activity(session, signup_id, org_id)
    if signup.status == c.WAITLIST:
        raise DomainError("activities.error.waitlist_not_no_show")
    if signup.status == c.WITHDRAWN:
        raise DomainError("activities.error.not_signed_up")
    if signup.checked_in_at is not None:
        raise DomainError("activities.error.checked_in_not_no_show")
    await _record_no_show(session, activity, signup)
    record_audit(
        session, actor, "activity.no_show", f"activity:{activity.id}", {"signup": signup.id}
    )
    return AttendanceResult(signup.id, c.NO_SHOW, None, 0)


async def _record_no_show(
    session: AsyncSession, activity: Activity, signup: ActivitySignup
) -> None:
    signup.attendance, signup.hours = c.NO_SHOW, None
    signup.updated_at = clock.now()
    await deliver_notice(
        session,
        signup.user_id,
        Reply(t("activities.notice.no_show", title=activity.title)),
        dedupe_key=f"noshow:{signup.id}",
    )


async def credit_signup(
    session: AsyncSession, activity: Activity, signup: ActivitySignup, actor: Actor
) -> int:
    """Post this sign-up's points (once, by idempotency key) and tell the resident."""
    if signup.attendance != c.ATTENDED or signup.points_txn_id is not None:
        return 0
    amount = c.points_for(activity, signup.hours or 0.0)
    if amount <= 0:
        return 0
    key = f"activity:{activity.id}:signup:{signup.id}"
    posted = await earn_points(
        session,
        user_id=signup.user_id,
        amount=amount,
        key=key,
        reason=t("activities.points.reason", title=activity.title, number=activity.number),
        actor=actor.label,
        community_id=activity.community_id,
        ref_type="activity",
        ref_id=str(activity.id),
    )
    signup.points_txn_id = posted.id
    await deliver_notice(
        session,
        signup.user_id,
        Reply(t("activities.notice.points", title=activity.title, points=amount)),
        dedupe_key=f"points:{signup.id}",
    )
    return amount


async def finish_activity(
    session: AsyncSession, *, activity_id: int, org_id: int | None, actor: Actor
) -> FinishResult:
    """Close the activity: confirmed residents who never checked in become no-shows, and
    every attended sign-up is credited, all in this one transaction."""
    # The sign-ups are reloaded below: changes made earlier in this transaction (an
    # attendance just confirmed) must reach the database first (no autoflush).
    await session.flush()
    activity = await c.load_activity(session, activity_id, lock=True)
    c.check_owner(activity, org_id)
    if activity.status == c.FINISHED:
        raise DomainError("activities.error.already_finished")
    if activity.status == c.CANCELLED:
        raise DomainError("activities.error.cancelled")
    if activity.status == c.DRAFT:
        raise DomainError("activities.error.not_published")
    if clock.now() < activity.starts_at:
        raise DomainError("activities.error.not_started")
    signups = list(
        await session.scalars(
            select(ActivitySignup)
            .where(ActivitySignup.activity_id == activity.id, ActivitySignup.status == c.CONFIRMED)
            .order_by(ActivitySignup.id)
            .execution_options(populate_existing=True)
        )
    )
    open_checkins = [
        s for s in signups if s.checked_in_at and not s.checked_out_at and s.attendance is None
    ]
    if open_checkins:
        raise DomainError("activities.error.open_checkins", count=len(open_checkins))
    # Lock every account this batch credits, in the ledger's global order, before the first
    # posting: otherwise a concurrent transfer between two of these residents can deadlock.
    await lock_accounts(
        session,
        [
            pool_account(activity.community_id),
            *(user_account(s.user_id) for s in signups if s.attendance == c.ATTENDED),
        ],
    )
    now = clock.now()
    activity.status = c.FINISHED
    activity.finished_at = activity.updated_at = now
    attended = points = no_shows = 0
    for signup in signups:
        if signup.attendance is None and signup.checked_in_at is None:
            await _record_no_show(session, activity, signup)
            no_shows += 1
        elif signup.attendance == c.ATTENDED:
            attended += 1
            points += await credit_signup(session, activity, signup, actor)
        elif signup.attendance == c.NO_SHOW:
            no_shows += 1
    record_audit(
        session,
        actor,
        "activity.finish",
        f"activity:{activity.id}",
        {"attended": attended, "points": points, "no_shows": no_shows},
    )
    return FinishResult(activity.id, attended, points, no_shows)


__all__ = [
    "AttendanceResult",
    "FinishResult",
    "attended_hours",
    "confirm_attendance",
    "credit_signup",
    "finish_activity",
    "mark_no_show",
]
