"""Shared pieces of the activity actions: statuses, button payloads, loading, texts.

Button payloads are short ASCII (Telegram allows 64 bytes of callback data) and carry only
ids, so the dialog engine can act on them in any conversation state:

    ac.<activity_id>   show the details of an activity
    as.<activity_id>   sign me up
    ax.<activity_id>   cancel my sign-up
    am                 my activities
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.catalog import t
from community.errors import Forbidden, NotFound
from community.notify import Button
from nlp.taxonomy import CATEGORIES
from storage.models import Activity, ActivitySignup, Community

PAYLOAD_DETAILS = "ac"
PAYLOAD_SIGNUP = "as"
PAYLOAD_CANCEL = "ax"
PAYLOAD_MINE = "am"

DRAFT, PUBLISHED, CANCELLED, FINISHED = "draft", "published", "cancelled", "finished"
CONFIRMED, WAITLIST, WITHDRAWN = "confirmed", "waitlist", "cancelled"
ATTENDED, NO_SHOW = "attended", "no_show"
HOURLY, FIXED = "hourly", "fixed"
ACTIVE_SIGNUP = (CONFIRMED, WAITLIST)
REMIND_24H = timedelta(hours=24)
REMIND_1H = timedelta(hours=1)


def details_payload(activity_id: int) -> str:
    return f"{PAYLOAD_DETAILS}.{activity_id}"


def signup_payload(activity_id: int) -> str:
    return f"{PAYLOAD_SIGNUP}.{activity_id}"


def cancel_payload(activity_id: int) -> str:
    return f"{PAYLOAD_CANCEL}.{activity_id}"


def parse_payload(payload: str) -> tuple[str, int | None] | None:
    """``"as.12"`` → ``("as", 12)``, ``"am"`` → ``("am", None)``; anything else → None."""
    verb, dot, arg = payload.partition(".")
    if verb == PAYLOAD_MINE and not dot:
        return verb, None
    if verb in {PAYLOAD_DETAILS, PAYLOAD_SIGNUP, PAYLOAD_CANCEL} and arg.isdigit():
        return verb, int(arg)
    return None


def details_button(activity_id: int) -> Button:
    return Button(t("activities.button.details"), details_payload(activity_id))


def signup_button(activity_id: int) -> Button:
    return Button(t("activities.button.signup"), signup_payload(activity_id))


def cancel_button(activity_id: int) -> Button:
    return Button(t("activities.button.cancel"), cancel_payload(activity_id))


def mine_button() -> Button:
    return Button(t("activities.button.mine"), PAYLOAD_MINE)


def format_when(starts_at: datetime, ends_at: datetime) -> str:
    """``11月28日（周六）09:00–11:00`` in local time; the end date only when it differs."""
    start, end = clock.local(starts_at), clock.local(ends_at)
    weekday = t(f"activities.weekday.{start.weekday()}")
    head = f"{start.month}月{start.day}日（{weekday}）{start:%H:%M}"
    if end.date() == start.date():
        return f"{head}–{end:%H:%M}"
    return f"{head}–{end.month}月{end.day}日 {end:%H:%M}"


def category_name(category: str) -> str:
    return CATEGORIES.get(category, category)


async def load_activity(session: AsyncSession, activity_id: int, *, lock: bool = False) -> Activity:
    """The activity, or NotFound; ``lock`` serializes state changes of one activity.

    ``FOR NO KEY UPDATE`` (``key_share``) on PostgreSQL: sign-up rows reference the activity
    by foreign key, and a plain ``FOR UPDATE`` would conflict with their inserts' key-share
    locks. SQLite ignores it (its writers are serialized anyway).
    """
    stmt = select(Activity).where(Activity.id == activity_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
    activity = await session.scalar(stmt)
    if activity is None:
        raise NotFound("activities.error.not_found")
    return activity


async def load_activity_by_number(session: AsyncSession, number: str) -> Activity:
    activity = await session.scalar(select(Activity).where(Activity.number == number.strip()))
    if activity is None:
        raise NotFound("activities.error.not_found")
    return activity


def check_owner(activity: Activity, org_id: int | None) -> None:
    """An organization may only manage its own activities (None: staff, checked upstream)."""
    if org_id is not None and activity.org_id != org_id:
        raise Forbidden("activities.error.not_your_activity")


async def community_name(session: AsyncSession, community_id: int) -> str:
    return await session.scalar(select(Community.name).where(Community.id == community_id)) or "-"


async def count_signups(session: AsyncSession, activity_id: int) -> tuple[int, int]:
    """(confirmed, waiting) for one activity."""
    rows = (
        await session.execute(
            select(ActivitySignup.status, func.count())
            .where(ActivitySignup.activity_id == activity_id)
            .group_by(ActivitySignup.status)
        )
    ).all()
    counts = {status: n for status, n in rows}
    return counts.get(CONFIRMED, 0), counts.get(WAITLIST, 0)


async def waitlist_position(session: AsyncSession, signup: ActivitySignup) -> int | None:
    """1-based place in the waiting list (first come, first served), None if not waiting."""
    if signup.status != WAITLIST:
        return None
    ahead = await session.scalar(
        select(func.count()).where(
            ActivitySignup.activity_id == signup.activity_id,
            ActivitySignup.status == WAITLIST,
            (ActivitySignup.queued_at < signup.queued_at)
            | ((ActivitySignup.queued_at == signup.queued_at) & (ActivitySignup.id < signup.id)),
        )
    )
    return int(ahead or 0) + 1


def points_for(activity: Activity, hours: float) -> int:
    """Hours × rate (rounded down), or the fixed sum."""
    if activity.points_mode == FIXED:
        return activity.points_rate
    return int(hours * activity.points_rate)


@dataclass(frozen=True)
class ActivityCard:
    """What a list or a notice shows about one activity."""

    id: int
    number: str
    title: str
    category: str
    community_id: int
    community: str
    place: str
    starts_at: datetime
    ends_at: datetime
    signup_deadline: datetime | None
    capacity: int | None
    confirmed: int
    waiting: int
    status: str
    points_mode: str
    points_rate: int

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.confirmed, 0)

    @property
    def when(self) -> str:
        return format_when(self.starts_at, self.ends_at)


async def cards_for(session: AsyncSession, activities: list[Activity]) -> list[ActivityCard]:
    """Cards for many activities with two queries (counts, community names), not 2 per card."""
    if not activities:
        return []
    ids = [a.id for a in activities]
    counts: dict[tuple[int, str], int] = {
        (activity_id, status): n
        for activity_id, status, n in (
            await session.execute(
                select(ActivitySignup.activity_id, ActivitySignup.status, func.count())
                .where(ActivitySignup.activity_id.in_(ids))
                .group_by(ActivitySignup.activity_id, ActivitySignup.status)
            )
        ).all()
    }
    names = dict(
        (
            await session.execute(
                select(Community.id, Community.name).where(
                    Community.id.in_({a.community_id for a in activities})
                )
            )
        ).all()
    )
    return [
        ActivityCard(
            id=a.id,
            number=a.number,
            title=a.title,
            category=a.category,
            community_id=a.community_id,
            community=names.get(a.community_id, "-"),
            place=a.place,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            signup_deadline=a.signup_deadline,
            capacity=a.capacity,
            confirmed=counts.get((a.id, CONFIRMED), 0),
            waiting=counts.get((a.id, WAITLIST), 0),
            status=a.status,
            points_mode=a.points_mode,
            points_rate=a.points_rate,
        )
        for a in activities
    ]


async def card_for(session: AsyncSession, activity: Activity) -> ActivityCard:
    return (await cards_for(session, [activity]))[0]


def seats_text(card: ActivityCard) -> str:
    left = card.seats_left
    if left is None:
        return t("activities.seats.unlimited")
    return t("activities.seats.left", left=left) if left else t("activities.seats.full")


def points_text(points_mode: str, points_rate: int) -> str:
    if points_rate <= 0:
        return t("activities.points.none")
    return t(f"activities.points.{points_mode}", rate=points_rate)


def new_checkin_secret() -> str:
    """A TOTP seed: 160 random bits in base32 (what authenticator apps expect too)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")
