"""What a resident wants to hear about: categories, communities, quiet hours and 退订.

Matching rule (the same as ``community.broadcasts``' audience filter, which does the
sending): a resident gets an activity notice when they follow the activity's category AND
the activity is in their own community or in one they follow. Following no category means
no activity notices: notices are opt-in. 退订 (``paused``) stops every notice at once; it
does not delete the choices, so 恢复 brings them back.

Quiet hours (default 21:00–08:00 local) hold a personal notice until they end: the outbox
row is written now, in the caller's transaction, and made due at the end of the quiet hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import delete, exists, false, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.audit import Actor, record_audit
from community.errors import DomainError
from community.notify import Reply, notify_user
from nlp.taxonomy import CATEGORIES
from storage.models import Community, NoticePrefs, OutboxMessage, Subscription, User

CATEGORY = "category"
COMMUNITY = "community"
DEFAULT_QUIET_START = 21 * 60
DEFAULT_QUIET_END = 8 * 60
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Interests:
    categories: frozenset[str]
    community_ids: frozenset[int]
    quiet_start: int = DEFAULT_QUIET_START  # minutes after local midnight
    quiet_end: int = DEFAULT_QUIET_END
    paused: bool = False


async def get_interests(session: AsyncSession, user_id: int) -> Interests:
    rows = (
        await session.execute(
            select(Subscription.scope, Subscription.value).where(Subscription.user_id == user_id)
        )
    ).all()
    prefs = await session.get(NoticePrefs, user_id)
    return Interests(
        categories=frozenset(v for s, v in rows if s == CATEGORY),
        community_ids=frozenset(int(v) for s, v in rows if s == COMMUNITY),
        quiet_start=prefs.quiet_start if prefs else DEFAULT_QUIET_START,
        quiet_end=prefs.quiet_end if prefs else DEFAULT_QUIET_END,
        paused=prefs.paused if prefs else False,
    )


async def set_interests(
    session: AsyncSession,
    *,
    user_id: int,
    actor: Actor,
    categories: Iterable[str] | None = None,
    community_ids: Iterable[int] | None = None,
) -> Interests:
    """Replace the chosen categories and/or communities (None leaves that scope alone)."""
    if categories is not None:
        wanted_categories = set(categories)
        unknown = sorted(wanted_categories - CATEGORIES.keys())
        if unknown:
            raise DomainError("activities.error.unknown_category", category=unknown[0])
        await _replace_scope(session, user_id, CATEGORY, {str(c) for c in wanted_categories})
    if community_ids is not None:
        wanted = {int(c) for c in community_ids}
        if wanted:
            known = set(await session.scalars(select(Community.id).where(Community.id.in_(wanted))))
            if wanted - known:
                raise DomainError("activities.error.unknown_community")
        await _replace_scope(session, user_id, COMMUNITY, {str(c) for c in wanted})
    interests = await get_interests(session, user_id)
    record_audit(
        session,
        actor,
        "interests.set",
        f"user:{user_id}",
        {
            "categories": sorted(interests.categories),
            "communities": sorted(interests.community_ids),
        },
    )
    return interests


async def _replace_scope(session: AsyncSession, user_id: int, scope: str, values: set[str]) -> None:
    await session.execute(
        delete(Subscription).where(
            Subscription.user_id == user_id,
            Subscription.scope == scope,
            Subscription.value.not_in(values) if values else true(),
        )
    )
    have = set(
        await session.scalars(
            select(Subscription.value).where(
                Subscription.user_id == user_id, Subscription.scope == scope
            )
        )
    )
    for value in sorted(values - have):
        session.add(Subscription(user_id=user_id, scope=scope, value=value, created_at=clock.now()))
    await session.flush()


async def _prefs(session: AsyncSession, user_id: int) -> NoticePrefs:
    prefs = await session.get(NoticePrefs, user_id)
    if prefs is None:
        prefs = NoticePrefs(
            user_id=user_id,
            quiet_start=DEFAULT_QUIET_START,
            quiet_end=DEFAULT_QUIET_END,
            paused=False,
        )
        session.add(prefs)
    prefs.updated_at = clock.now()
    return prefs


async def set_quiet_hours(
    session: AsyncSession, *, user_id: int, start_minute: int, end_minute: int, actor: Actor
) -> Interests:
    """Set the daily quiet window (local minutes after midnight; equal values = none)."""
    for value in (start_minute, end_minute):
        if not 0 <= value < MINUTES_PER_DAY:
            raise DomainError("activities.error.bad_quiet_hours")
    prefs = await _prefs(session, user_id)
    prefs.quiet_start, prefs.quiet_end = start_minute, end_minute
    record_audit(
        session,
        actor,
        "interests.quiet",
        f"user:{user_id}",
        {"start": start_minute, "end": end_minute},
    )
    await session.flush()
    return await get_interests(session, user_id)


async def unsubscribe_all(session: AsyncSession, *, user_id: int, actor: Actor) -> Interests:
    """退订: no notices at all from now on (the choices are kept for 恢复)."""
    prefs = await _prefs(session, user_id)
    prefs.paused = True
    record_audit(session, actor, "interests.pause", f"user:{user_id}")
    await session.flush()
    return await get_interests(session, user_id)


async def resubscribe(session: AsyncSession, *, user_id: int, actor: Actor) -> Interests:
    prefs = await _prefs(session, user_id)
    prefs.paused = False
    record_audit(session, actor, "interests.resume", f"user:{user_id}")
    await session.flush()
    return await get_interests(session, user_id)


def matches(
    interests: Interests, home_community_id: int | None, category: str, community_id: int
) -> bool:
    """The matching rule of this module's docstring, for one resident."""
    if interests.paused or category not in interests.categories:
        return False
    return community_id == home_community_id or community_id in interests.community_ids


async def subscriber_ids(session: AsyncSession, *, category: str, community_id: int) -> list[int]:
    """Residents an activity of ``category`` in ``community_id`` should be announced to."""
    follows_category = exists().where(
        Subscription.user_id == User.id,
        Subscription.scope == CATEGORY,
        Subscription.value == category,
    )
    community_sub = Subscription.__table__.alias("community_sub")
    follows_community = exists().where(
        community_sub.c.user_id == User.id,
        community_sub.c.scope == COMMUNITY,
        community_sub.c.value == str(community_id),
    )
    stmt = (
        select(User.id)
        .outerjoin(NoticePrefs, NoticePrefs.user_id == User.id)
        .where(
            User.deleted_at.is_(None),
            func.coalesce(NoticePrefs.paused, false()) == false(),
            follows_category,
            or_(User.community_id == community_id, follows_community),
        )
        .order_by(User.id)
    )
    return list(await session.scalars(stmt))


def quiet_until(interests: Interests, at: datetime) -> datetime | None:
    """End of the quiet hours ``at`` falls in (aware, same zone as ``at``), else None."""
    start, end = interests.quiet_start, interests.quiet_end
    if start == end:
        return None
    here = clock.local(at)
    minute = here.hour * 60 + here.minute
    quiet = start <= minute < end if start < end else (minute >= start or minute < end)
    if not quiet:
        return None
    release = datetime.combine(here.date(), time(end // 60, end % 60), tzinfo=clock.LOCAL_TZ)
    if release <= here:
        release += timedelta(days=1)
    return release.astimezone(at.tzinfo)


async def deliver_notice(
    session: AsyncSession,
    user_id: int,
    reply: Reply,
    *,
    dedupe_key: str,
    must_arrive_before: datetime | None = None,
    urgent: bool = False,
) -> str:
    """Send a personal notice, honouring 退订 and quiet hours; says what happened.

    ``"paused"``: not sent (退订). ``"sent"``: due now. ``"deferred"``: due at the end of the
    quiet hours. ``"late"``: dropped, because the end of the quiet hours is after
    ``must_arrive_before`` (a reminder after the start is noise). An ``urgent`` notice (a
    cancellation, say) that would be late is sent at once instead: a resident should not walk
    to an activity that no longer takes place because it was their quiet time.
    """
    prefs = await session.get(NoticePrefs, user_id)  # only the switches: one look-up
    if prefs is not None and prefs.paused:
        return "paused"
    now = clock.now()
    window = Interests(frozenset(), frozenset())
    if prefs is not None:
        window = Interests(frozenset(), frozenset(), prefs.quiet_start, prefs.quiet_end)
    release = quiet_until(window, now)
    if release is not None and must_arrive_before is not None and release >= must_arrive_before:
        if not urgent:
            return "late"
        release = None
    await notify_user(session, user_id, reply, dedupe_key=dedupe_key)
    if release is None:
        return "sent"
    # notify_user has no "not before" yet: the row it just wrote is found by its unique key.
    # Web chat notices are transcript rows the page pulls, so they need no holding back.
    held = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.dedupe_key == dedupe_key, OutboxMessage.status == "pending")
        .values(next_attempt_at=release)
    )
    return "deferred" if held.rowcount else "sent"


__all__ = [
    "CATEGORY",
    "COMMUNITY",
    "Interests",
    "deliver_notice",
    "get_interests",
    "matches",
    "quiet_until",
    "resubscribe",
    "set_interests",
    "set_quiet_hours",
    "subscriber_ids",
    "unsubscribe_all",
]
