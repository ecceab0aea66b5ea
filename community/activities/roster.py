"""The organizer's view of who signed up, and messages to them.

Each row carries the resident's earlier no-shows, so an organizer sees them at the next
sign-up; it is information, never an automatic penalty. Phone numbers are not shown here:
an organizer reaches sign-ups through ``message_signups`` (the resident's own channel).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.audit import Actor, record_audit
from community.catalog import t
from community.errors import DomainError
from community.interests import deliver_notice
from community.notify import Reply
from storage.models import ActivitySignup, User

MAX_MESSAGE = 500


@dataclass(frozen=True)
class SignupRow:
    signup_id: int
    user_id: int
    name: str
    status: str
    queued_at: datetime
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    checkin_method: str | None
    attendance: str | None
    hours: float | None
    points_credited: bool
    no_shows: int  # at other activities


async def list_signups(
    session: AsyncSession, *, activity_id: int, org_id: int | None
) -> list[SignupRow]:
    """Sign-ups of one activity: confirmed, then the waiting list in order, then withdrawn."""
    activity = await c.load_activity(session, activity_id)
    c.check_owner(activity, org_id)
    order = case(
        (ActivitySignup.status == c.CONFIRMED, 0), (ActivitySignup.status == c.WAITLIST, 1), else_=2
    )
    rows = (
        await session.execute(
            select(ActivitySignup, User.display_name)
            .join(User, User.id == ActivitySignup.user_id)
            .where(ActivitySignup.activity_id == activity.id)
            .order_by(order, ActivitySignup.queued_at, ActivitySignup.id)
        )
    ).all()
    user_ids = [signup.user_id for signup, _ in rows]
    no_shows = dict(
        (
            await session.execute(
                select(ActivitySignup.user_id, func.count())
                .where(
                    ActivitySignup.user_id.in_(user_ids),
                    ActivitySignup.attendance == c.NO_SHOW,
                    ActivitySignup.activity_id != activity.id,
                )
                .group_by(ActivitySignup.user_id)
            )
        ).all()
    )
    return [
        SignupRow(
            signup_id=s.id,
            user_id=s.user_id,
            name=name or f"#{s.user_id}",
            status=s.status,
            queued_at=s.queued_at,
            checked_in_at=s.checked_in_at,
            checked_out_at=s.checked_out_at,
            checkin_method=s.checkin_method,
            attendance=s.attendance,
            hours=s.hours,
            points_credited=s.points_txn_id is not None,
            no_shows=no_shows.get(s.user_id, 0),
        )
        for s, name in rows
    ]


async def message_signups(
    session: AsyncSession,
    *,
    activity_id: int,
    org_id: int | None,
    actor: Actor,
    text: str,
    include_waitlist: bool = False,
) -> int:
    """Send the organizer's words to everyone signed up; returns how many will get it."""
    text = text.strip()
    if not text or len(text) > MAX_MESSAGE:
        raise DomainError("activities.error.message_empty")
    activity = await c.load_activity(session, activity_id)
    c.check_owner(activity, org_id)
    if activity.status == c.DRAFT:
        raise DomainError("activities.error.not_published")
    statuses = c.ACTIVE_SIGNUP if include_waitlist else (c.CONFIRMED,)
    signups = list(
        await session.scalars(
            select(ActivitySignup)
            .where(ActivitySignup.activity_id == activity.id, ActivitySignup.status.in_(statuses))
            .order_by(ActivitySignup.id)
        )
    )
    batch = secrets.token_hex(6)  # the same words sent twice on purpose are two messages
    body = t("activities.notice.organizer_message", title=activity.title, text=text)
    before = activity.starts_at if clock.now() < activity.starts_at else None
    sent = 0
    for signup in signups:
        outcome = await deliver_notice(
            session,
            signup.user_id,
            Reply(body, (c.details_button(activity.id),)),
            dedupe_key=f"amsg:{activity.id}:{batch}:{signup.id}",
            must_arrive_before=before,
            urgent=True,
        )
        sent += outcome in ("sent", "deferred")
    record_audit(
        session,
        actor,
        "activity.message",
        f"activity:{activity.id}",
        {"recipients": sent, "chars": len(text)},
    )
    return sent


__all__ = ["SignupRow", "list_signups", "message_signups"]
