"""Read-only views: upcoming activities, one activity's details, 我的活动, an organization's list.

Residents only ever see published (or, for their own sign-ups, cancelled/finished)
activities; drafts are the organizer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.errors import NotFound
from storage.models import Activity, ActivitySignup, Organization


@dataclass(frozen=True)
class ActivityDetails:
    card: c.ActivityCard
    description: str
    organization: str
    my_signup_id: int | None
    my_status: str | None  # confirmed | waitlist | cancelled | None
    my_position: int | None


@dataclass(frozen=True)
class MyActivity:
    card: c.ActivityCard
    signup_id: int
    status: str
    position: int | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    attendance: str | None
    hours: float | None
    points_credited: bool


def end_of_week(at: datetime) -> datetime:
    """Next Monday 00:00 local time: the end of 本周 for a resident in China."""
    here = clock.local(at)
    monday = here.date() + timedelta(days=7 - here.weekday())
    return datetime.combine(monday, time(0), tzinfo=clock.LOCAL_TZ)


async def list_upcoming(
    session: AsyncSession,
    *,
    community_id: int | None = None,
    category: str | None = None,
    this_week: bool = False,
    limit: int = 20,
) -> list[c.ActivityCard]:
    """Published activities not yet started, soonest first (near me / by category / 本周)."""
    now = clock.now()
    stmt = select(Activity).where(Activity.status == c.PUBLISHED, Activity.starts_at > now)
    if community_id is not None:
        stmt = stmt.where(Activity.community_id == community_id)
    if category is not None:
        stmt = stmt.where(Activity.category == category)
    if this_week:
        stmt = stmt.where(Activity.starts_at < end_of_week(now))
    stmt = stmt.order_by(Activity.starts_at, Activity.id).limit(limit)
    return await c.cards_for(session, list(await session.scalars(stmt)))


async def activity_details(
    session: AsyncSession, activity_id: int, *, user_id: int | None = None
) -> ActivityDetails:
    """One activity as a resident sees it, with their own sign-up state if any."""
    activity = await c.load_activity(session, activity_id)
    if activity.status == c.DRAFT:
        raise NotFound("activities.error.not_found")
    signup = None
    if user_id is not None:
        signup = await session.scalar(
            select(ActivitySignup).where(
                ActivitySignup.activity_id == activity.id, ActivitySignup.user_id == user_id
            )
        )
    org_name = await session.scalar(
        select(Organization.name).where(Organization.id == activity.org_id)
    )
    return ActivityDetails(
        card=await c.card_for(session, activity),
        description=activity.description,
        organization=org_name or "-",
        my_signup_id=signup.id if signup else None,
        my_status=signup.status if signup else None,
        my_position=await c.waitlist_position(session, signup) if signup else None,
    )


async def my_activities(
    session: AsyncSession, user_id: int, *, include_past: bool = False, limit: int = 20
) -> list[MyActivity]:
    """我的活动: the resident's current sign-ups (and, with ``include_past``, their history)."""
    now = clock.now()
    stmt = (
        select(ActivitySignup, Activity)
        .join(Activity, Activity.id == ActivitySignup.activity_id)
        .where(ActivitySignup.user_id == user_id, Activity.status != c.DRAFT)
    )
    if include_past:
        stmt = stmt.order_by(Activity.starts_at.desc())
    else:
        stmt = stmt.where(
            ActivitySignup.status.in_(c.ACTIVE_SIGNUP), Activity.ends_at > now
        ).order_by(Activity.starts_at)
    rows = (await session.execute(stmt.limit(limit))).all()
    cards = await c.cards_for(session, [activity for _, activity in rows])
    return [
        MyActivity(
            card=card,
            signup_id=signup.id,
            status=signup.status,
            position=await c.waitlist_position(session, signup),
            checked_in_at=signup.checked_in_at,
            checked_out_at=signup.checked_out_at,
            attendance=signup.attendance,
            hours=signup.hours,
            points_credited=signup.points_txn_id is not None,
        )
        for (signup, _), card in zip(rows, cards, strict=True)
    ]


async def list_org_activities(
    session: AsyncSession, org_id: int, *, include_past: bool = False, limit: int = 50
) -> list[c.ActivityCard]:
    """An organization's activities, drafts included (for its dashboard)."""
    stmt = select(Activity).where(Activity.org_id == org_id)
    if not include_past:  # an activity still to finish stays listed until it is
        stmt = stmt.where(
            or_(
                Activity.ends_at > clock.now() - timedelta(days=1),
                Activity.status.in_((c.DRAFT, c.PUBLISHED)),
            )
        )
    stmt = stmt.order_by(Activity.starts_at.desc(), Activity.id.desc()).limit(limit)
    return await c.cards_for(session, list(await session.scalars(stmt)))


__all__ = [
    "ActivityDetails",
    "MyActivity",
    "activity_details",
    "end_of_week",
    "list_org_activities",
    "list_upcoming",
    "my_activities",
]
