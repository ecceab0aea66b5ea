"""Resident actions: sign up (or join the waiting list), cancel, and the waiting list itself.

Every change locks the activity row first (see ``common.load_activity``), so two residents
racing for the last seat are served one after the other and capacity is never exceeded.
The waiting list is first come, first served by ``queued_at`` (then id).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.audit import Actor, record_audit
from community.catalog import t
from community.errors import DomainError, Forbidden
from community.interests import deliver_notice
from community.notify import Reply, notify_user
from storage.models import Activity, ActivitySignup


@dataclass(frozen=True)
class SignupResult:
    signup_id: int
    activity_id: int
    status: str  # confirmed | waitlist
    position: int | None  # place in the waiting list
    no_shows: int  # the resident's earlier no-shows (shown to the organizer)


@dataclass(frozen=True)
class CancelResult:
    signup_id: int
    was: str  # confirmed | waitlist
    promoted_user_ids: tuple[int, ...]


def _mark_reminders_passed(signup: ActivitySignup, activity: Activity) -> None:
    """A seat taken after a reminder's moment needs no reminder: the notice said it all."""
    now = clock.now()
    if now >= activity.starts_at - c.REMIND_24H:
        signup.reminded_24h_at = signup.reminded_24h_at or now
    if now >= activity.starts_at - c.REMIND_1H:
        signup.reminded_1h_at = signup.reminded_1h_at or now


def _check_open(activity: Activity) -> None:
    if activity.status == c.DRAFT:
        raise DomainError("activities.error.not_found")
    if activity.status == c.CANCELLED:
        raise DomainError("activities.error.cancelled")
    if activity.status == c.FINISHED:
        raise DomainError("activities.error.finished")


async def count_no_shows(session: AsyncSession, user_id: int) -> int:
    """How often this resident signed up and did not come (for organizers, not a penalty)."""
    found = await session.scalar(
        select(func.count()).where(
            ActivitySignup.user_id == user_id, ActivitySignup.attendance == c.NO_SHOW
        )
    )
    return int(found or 0)


async def sign_up(
    session: AsyncSession,
    *,
    activity_id: int,
    user_id: int,
    actor: Actor | None = None,
    notify: bool = True,
) -> SignupResult:
    """Take a seat, or a place on the waiting list when the activity is full.

    ``notify`` writes the confirmation as a notice; a dialog that answers the resident
    itself passes False (the web chat would otherwise show it twice).
    """
    actor = actor or Actor("resident", str(user_id))
    activity = await c.load_activity(session, activity_id, lock=True)
    _check_open(activity)
    now = clock.now()
    if now >= activity.starts_at:
        raise DomainError("activities.error.signup_started")
    if activity.signup_deadline is not None and now > activity.signup_deadline:
        raise DomainError("activities.error.deadline_passed")
    signup = await session.scalar(
        select(ActivitySignup).where(
            ActivitySignup.activity_id == activity.id, ActivitySignup.user_id == user_id
        )
    )
    if signup is not None and signup.status == c.CONFIRMED:
        raise DomainError("activities.error.already_signed_up")
    if signup is not None and signup.status == c.WAITLIST:
        position = await c.waitlist_position(session, signup)
        raise DomainError("activities.error.already_waitlisted", position=position)
    confirmed, waiting = await c.count_signups(session, activity.id)
    if waiting and (activity.capacity is None or confirmed < activity.capacity):
        # Free seats with people waiting (a missed promotion): nobody may jump that queue.
        confirmed += len(await promote_waitlist(session, activity))
    full = activity.capacity is not None and confirmed >= activity.capacity
    status = c.WAITLIST if full else c.CONFIRMED
    if signup is None:
        signup = ActivitySignup(activity_id=activity.id, user_id=user_id, created_at=now)
        session.add(signup)
    signup.status = status
    signup.queued_at = signup.updated_at = now
    signup.cancelled_at = signup.promoted_at = None
    signup.reminded_24h_at = signup.reminded_1h_at = None
    signup.notified_version = activity.version  # knows the activity as it is now
    if status == c.CONFIRMED:
        _mark_reminders_passed(signup, activity)
    await session.flush()
    position = await c.waitlist_position(session, signup)
    record_audit(session, actor, "activity.signup", f"activity:{activity.id}", {"status": status})
    if notify:
        when = c.format_when(activity.starts_at, activity.ends_at)
        text = (
            t("activities.notice.waitlisted", title=activity.title, position=position)
            if status == c.WAITLIST
            else t(
                "activities.notice.signed_up", title=activity.title, when=when, place=activity.place
            )
        )
        # An answer to the resident's own action: not held by quiet hours or 退订.
        await notify_user(
            session,
            user_id,
            Reply(text, (c.cancel_button(activity.id), c.mine_button())),
            dedupe_key=f"signup:{signup.id}:{now.isoformat()}",
        )
    return SignupResult(
        signup.id, activity.id, status, position, await count_no_shows(session, user_id)
    )


async def cancel_signup(
    session: AsyncSession,
    *,
    user_id: int,
    activity_id: int | None = None,
    signup_id: int | None = None,
    actor: Actor | None = None,
) -> CancelResult:
    """Withdraw the resident's own sign-up; a freed seat goes to the first in the queue."""
    if (activity_id is None) == (signup_id is None):
        raise ValueError("give exactly one of activity_id, signup_id")
    actor = actor or Actor("resident", str(user_id))
    if signup_id is not None:
        row = (
            await session.execute(
                select(ActivitySignup.user_id, ActivitySignup.activity_id).where(
                    ActivitySignup.id == signup_id
                )
            )
        ).first()
        if row is None:
            raise DomainError("activities.error.not_signed_up")
        if row.user_id != user_id:
            raise Forbidden("activities.error.not_your_signup")
        activity_id = row.activity_id
    assert activity_id is not None
    activity = await c.load_activity(session, activity_id, lock=True)
    signup = await session.scalar(
        select(ActivitySignup)
        .where(ActivitySignup.activity_id == activity.id, ActivitySignup.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    if signup is None or signup.status not in c.ACTIVE_SIGNUP:
        raise DomainError("activities.error.not_signed_up")
    _check_open(activity)
    now = clock.now()
    if now >= activity.starts_at:
        raise DomainError("activities.error.cancel_started")
    was = signup.status
    signup.status = c.WITHDRAWN
    signup.cancelled_at = signup.updated_at = now
    await session.flush()
    promoted = await promote_waitlist(session, activity) if was == c.CONFIRMED else []
    record_audit(
        session,
        actor,
        "activity.signup_cancel",
        f"activity:{activity.id}",
        {"was": was, "promoted": [s.user_id for s in promoted]},
    )
    return CancelResult(signup.id, was, tuple(s.user_id for s in promoted))


async def promote_waitlist(session: AsyncSession, activity: Activity) -> list[ActivitySignup]:
    """Fill free seats from the waiting list, in order, each with a notice.

    The caller holds the activity's row lock. Nobody is moved up once the activity has
    started or when it is not published: a seat in the past is no use to anyone.
    """
    now = clock.now()
    if activity.status != c.PUBLISHED or now >= activity.starts_at:
        return []
    confirmed, waiting = await c.count_signups(session, activity.id)
    free = waiting if activity.capacity is None else min(activity.capacity - confirmed, waiting)
    if free <= 0:
        return []
    queue = list(
        await session.scalars(
            select(ActivitySignup)
            .where(ActivitySignup.activity_id == activity.id, ActivitySignup.status == c.WAITLIST)
            .order_by(ActivitySignup.queued_at, ActivitySignup.id)
            .limit(free)
        )
    )
    when = c.format_when(activity.starts_at, activity.ends_at)
    text = t("activities.notice.promoted", title=activity.title, when=when, place=activity.place)
    for signup in queue:
        signup.status = c.CONFIRMED
        signup.promoted_at = signup.updated_at = now
        _mark_reminders_passed(signup, activity)
        await deliver_notice(
            session,
            signup.user_id,
            Reply(text, (c.details_button(activity.id), c.cancel_button(activity.id))),
            dedupe_key=f"promoted:{signup.id}:{signup.queued_at.isoformat()}",
            must_arrive_before=activity.starts_at,
            urgent=True,
        )
    if queue:
        await session.flush()
    return queue


__all__ = [
    "CancelResult",
    "SignupResult",
    "cancel_signup",
    "count_no_shows",
    "promote_waitlist",
    "sign_up",
]
