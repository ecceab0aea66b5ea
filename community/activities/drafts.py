"""What an organizer fills in for an activity, and the rules it must meet.

The same checks run on create and on every edit (an edit is validated as the whole
activity it would produce), so an edit cannot reach a state a create would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community.activities import common as c
from community.errors import DomainError, Forbidden
from nlp.taxonomy import CATEGORIES
from storage.models import Community, Organization, OrgCommunity

MAX_SPAN = timedelta(days=7)
MAX_CAPACITY = 10_000
MAX_POINTS_RATE = 1_000
MAX_DESCRIPTION = 2_000


@dataclass(frozen=True)
class ActivityDraft:
    """Everything an organizer fills in; times are aware datetimes."""

    title: str
    place: str
    community_id: int
    category: str
    starts_at: datetime
    ends_at: datetime
    description: str = ""
    signup_deadline: datetime | None = None
    capacity: int | None = None  # None = no limit
    points_mode: str = c.HOURLY
    points_rate: int = 0


EDITABLE = frozenset(f.name for f in fields(ActivityDraft))


async def validate_draft(session: AsyncSession, org_id: int, draft: ActivityDraft) -> ActivityDraft:
    """Refuse a bad draft with the first reason found; returns it with texts trimmed."""
    draft = replace(
        draft,
        title=draft.title.strip(),
        place=draft.place.strip(),
        description=draft.description.strip(),
    )
    if not draft.title or len(draft.title) > 64:
        raise DomainError("activities.error.bad_title")
    if not draft.place or len(draft.place) > 128:
        raise DomainError("activities.error.bad_place")
    if len(draft.description) > MAX_DESCRIPTION:
        raise DomainError("activities.error.bad_description")
    if draft.category not in CATEGORIES:
        raise DomainError("activities.error.unknown_category", category=draft.category)
    if await session.get(Community, draft.community_id) is None:
        raise DomainError("activities.error.unknown_community")
    org = await session.get(Organization, org_id)
    serves = org is not None and (
        org.all_communities
        or await session.scalar(
            select(OrgCommunity.org_id).where(
                OrgCommunity.org_id == org_id, OrgCommunity.community_id == draft.community_id
            )
        )
        is not None
    )
    if not serves:
        raise Forbidden("activities.error.community_not_served")
    if any(d.tzinfo is None for d in (draft.starts_at, draft.ends_at)):
        raise ValueError("activity times must be aware datetimes")
    if not draft.starts_at < draft.ends_at <= draft.starts_at + MAX_SPAN:
        raise DomainError("activities.error.bad_times")
    deadline = draft.signup_deadline
    if deadline is not None and (deadline.tzinfo is None or deadline > draft.starts_at):
        raise DomainError("activities.error.bad_deadline")
    if draft.capacity is not None and not 1 <= draft.capacity <= MAX_CAPACITY:
        raise DomainError("activities.error.bad_capacity")
    if (
        draft.points_mode not in (c.HOURLY, c.FIXED)
        or not 0 <= draft.points_rate <= MAX_POINTS_RATE
    ):
        raise DomainError("activities.error.bad_points")
    return draft
