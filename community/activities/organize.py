"""Organizer actions: create, publish (broadcast), edit (change notices), cancel.

Scheduling is not done here: these functions run inside the caller's transaction, and a job
scheduled before the commit could fire for a change that then rolls back. The caller calls
``community.scheduler.schedule_activity_jobs`` (or ``unschedule_…``) after the commit; the
scheduler's sweep covers a process that died in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.activities.drafts import EDITABLE, ActivityDraft, validate_draft
from community.activities.signups import promote_waitlist
from community.audit import Actor, record_audit
from community.broadcasts import Audience, cancel_broadcast, start_broadcast
from community.catalog import t
from community.errors import DomainError
from community.interests import deliver_notice
from community.notify import Reply
from community.numbering import next_value
from storage.models import Activity, ActivitySignup, Broadcast

NOTICE_FIELDS = frozenset({"title", "place", "starts_at", "ends_at"})  # worth telling sign-ups
LOCKED_WHEN_PUBLISHED = frozenset({"category", "community_id"})  # the broadcast went by these


@dataclass(frozen=True)
class EditResult:
    activity: Activity
    changed: tuple[str, ...]
    notified: int  # sign-ups told about the change
    promoted: int  # moved up from the waiting list (more seats, later deadline)


async def create_activity(
    session: AsyncSession, *, org_id: int, actor: Actor, draft: ActivityDraft
) -> Activity:
    """Save a draft activity (not visible to residents until published)."""
    now = clock.now()
    draft = await validate_draft(session, org_id, draft)
    if draft.starts_at <= now:
        raise DomainError("activities.error.starts_in_past")
    # Own monthly counter: numbering.next_request_number shares one counter for all prefixes.
    period = clock.local(now).strftime("%y%m")
    number = f"HD{period}-{await next_value(session, f'act:{period}'):04d}"
    activity = Activity(
        number=number,
        org_id=org_id,
        status=c.DRAFT,
        version=1,
        checkin_secret=c.new_checkin_secret(),
        created_by=actor.label,
        created_at=now,
        updated_at=now,
        **{name: getattr(draft, name) for name in EDITABLE},
    )
    session.add(activity)
    await session.flush()
    record_audit(session, actor, "activity.create", f"activity:{activity.id}", {"number": number})
    return activity


async def publish_activity(
    session: AsyncSession, *, activity_id: int, org_id: int | None, actor: Actor
) -> Activity:
    """Open sign-ups and announce the activity to the residents whose interests match."""
    activity = await c.load_activity(session, activity_id, lock=True)
    c.check_owner(activity, org_id)
    if activity.status != c.DRAFT:
        raise DomainError("activities.error.not_draft")
    now = clock.now()
    if activity.starts_at <= now:
        raise DomainError("activities.error.starts_in_past")
    if activity.signup_deadline is not None and activity.signup_deadline <= now:
        raise DomainError("activities.error.bad_deadline")
    activity.status = c.PUBLISHED
    activity.published_at = activity.updated_at = now
    card = await c.card_for(session, activity)
    text = t(
        "activities.notice.published",
        title=card.title,
        when=card.when,
        place=card.place,
        community=card.community,
        seats=c.seats_text(card),
        points=c.points_text(card.points_mode, card.points_rate),
    )
    await start_broadcast(
        session,
        kind="activity_published",
        text=text,
        buttons=[c.details_button(activity.id), c.signup_button(activity.id)],
        audience=Audience(
            categories=frozenset({activity.category}),
            community_ids=frozenset({activity.community_id}),
        ),
        created_by=actor.label,
        activity_id=activity.id,
        community_id=activity.community_id,
    )
    record_audit(session, actor, "activity.publish", f"activity:{activity.id}")
    return activity


async def _active_signups(session: AsyncSession, activity_id: int) -> list[ActivitySignup]:
    return list(
        await session.scalars(
            select(ActivitySignup)
            .where(
                ActivitySignup.activity_id == activity_id,
                ActivitySignup.status.in_(c.ACTIVE_SIGNUP),
            )
            .order_by(ActivitySignup.id)
        )
    )


async def edit_activity(
    session: AsyncSession,
    *,
    activity_id: int,
    org_id: int | None,
    actor: Actor,
    changes: Mapping[str, Any],
) -> EditResult:
    """Change an activity; sign-ups hear about a new time, place or title (version bump)."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    activity = await c.load_activity(session, activity_id, lock=True)
    c.check_owner(activity, org_id)
    if activity.status not in (c.DRAFT, c.PUBLISHED):
        raise DomainError("activities.error.cannot_edit")
    current = ActivityDraft(**{name: getattr(activity, name) for name in EDITABLE})
    wanted = await validate_draft(session, activity.org_id, replace(current, **changes))
    changed = tuple(n for n in sorted(EDITABLE) if getattr(wanted, n) != getattr(current, n))
    if not changed:
        return EditResult(activity, (), 0, 0)
    now = clock.now()
    if activity.status == c.PUBLISHED and LOCKED_WHEN_PUBLISHED & set(changed):
        raise DomainError("activities.error.field_locked")
    if "starts_at" in changed and wanted.starts_at <= now:
        raise DomainError("activities.error.starts_in_past")
    confirmed, _ = await c.count_signups(session, activity.id)
    if wanted.capacity is not None and wanted.capacity < confirmed:
        raise DomainError("activities.error.capacity_below_confirmed", confirmed=confirmed)
    old_starts = activity.starts_at
    for name in changed:
        setattr(activity, name, getattr(wanted, name))
    activity.updated_at = now
    notified = 0
    if activity.status == c.PUBLISHED and NOTICE_FIELDS & set(changed):
        activity.version += 1
        notified = await _tell_signups(session, activity, "changed", old_starts)
    promoted = await promote_waitlist(session, activity) if activity.status == c.PUBLISHED else []
    record_audit(
        session, actor, "activity.edit", f"activity:{activity.id}", {"changed": list(changed)}
    )
    return EditResult(activity, changed, notified, len(promoted))


async def _tell_signups(
    session: AsyncSession, activity: Activity, what: str, old_starts: datetime
) -> int:
    """Tell every active sign-up about version ``activity.version`` (changed or cancelled)."""
    now = clock.now()
    when = c.format_when(activity.starts_at, activity.ends_at)
    if what == "cancelled":
        reason = activity.cancel_reason or "-"
        text = t("activities.notice.cancelled", title=activity.title, when=when, reason=reason)
    else:
        text = t("activities.notice.changed", title=activity.title, when=when, place=activity.place)
    buttons = () if what == "cancelled" else (c.details_button(activity.id),)
    told = 0
    for signup in await _active_signups(session, activity.id):
        if signup.notified_version >= activity.version:
            continue
        outcome = await deliver_notice(
            session,
            signup.user_id,
            Reply(text, buttons),
            dedupe_key=f"{what}:{signup.id}:v{activity.version}",
            must_arrive_before=min(old_starts, activity.starts_at),
            urgent=True,
        )
        signup.notified_version = activity.version
        if what == "changed" and activity.starts_at != old_starts:
            # A new time makes the reminders due again (unless their moment has passed).
            if activity.starts_at - c.REMIND_24H > now:
                signup.reminded_24h_at = None
            if activity.starts_at - c.REMIND_1H > now:
                signup.reminded_1h_at = None
        told += outcome != "paused"
    return told


async def cancel_activity(
    session: AsyncSession, *, activity_id: int, org_id: int | None, actor: Actor, reason: str
) -> Activity:
    """Call the activity off; everyone signed up or waiting is told (even in quiet hours)."""
    activity = await c.load_activity(session, activity_id, lock=True)
    c.check_owner(activity, org_id)
    if activity.status == c.CANCELLED:
        raise DomainError("activities.error.cancelled")
    if activity.status == c.FINISHED:
        raise DomainError("activities.error.finished")
    now = clock.now()
    was_published = activity.status == c.PUBLISHED
    activity.status = c.CANCELLED
    activity.cancel_reason = reason.strip()[:500] or None
    activity.cancelled_at = activity.updated_at = now
    activity.version += 1
    notified = 0
    if was_published:
        notified = await _tell_signups(session, activity, "cancelled", activity.starts_at)
        # An announcement still going out would invite people to something called off.
        unsent = await session.scalars(
            select(Broadcast.id).where(
                Broadcast.activity_id == activity.id,
                Broadcast.status.in_(("planning", "sending")),
            )
        )
        for broadcast_id in list(unsent):
            await cancel_broadcast(session, broadcast_id, actor.label)
    record_audit(
        session,
        actor,
        "activity.cancel",
        f"activity:{activity.id}",
        {"reason": activity.cancel_reason, "notified": notified},
    )
    return activity


__all__ = [
    "EditResult",
    "cancel_activity",
    "create_activity",
    "edit_activity",
    "publish_activity",
]
