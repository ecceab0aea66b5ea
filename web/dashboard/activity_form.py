"""The activity form: what was typed → an ActivityDraft, or polite reasons why not.

Times come either from an ``<input type=datetime-local>`` (local wall time) or as Chinese
text (「下周六上午9点到11点」, parsed by nlp.timeparse); the text wins when both are filled,
because a picker may still hold the value the page was opened with. The end time's text is
read relative to the start, so 「11点半」 alone means that day. The rules of an activity
(past start, capacity, points…) stay in community.activities: this module only turns
strings into values, and every string typed is handed back for the page to show again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from starlette.datastructures import FormData

from community import clock
from community.activities import ActivityDraft
from community.activities.common import FIXED, HOURLY
from community.catalog import t
from nlp.timeparse import parse_datetime
from storage.models import Activity
from web.dashboard.scope import as_id, whole_number

TEXT_FIELDS = (
    "title",
    "description",
    "place",
    "community_id",
    "category",
    "starts_at",
    "starts_text",
    "ends_at",
    "ends_text",
    "deadline_at",
    "deadline_text",
    "capacity",
    "points_mode",
    "points_rate",
    "org_id",
)
LIMITS = {"description": 2100, "starts_text": 64, "ends_text": 64, "deadline_text": 64}
PICKER_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass
class ParsedForm:
    values: dict[str, str]  # exactly what was typed, to show again
    errors: list[str] = field(default_factory=list)
    draft: ActivityDraft | None = None
    org_id: int | None = None


def raw_values(form: FormData) -> dict[str, str]:
    values = {}
    for name in TEXT_FIELDS:
        value = form.get(name)
        values[name] = value.strip()[: LIMITS.get(name, 200)] if isinstance(value, str) else ""
    return values


def _picker(value: str) -> datetime | None:
    """``2026-11-28T09:00`` (local wall time) → aware; ValueError when malformed."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=clock.LOCAL_TZ)
    return parsed


def read_time(
    picker: str, text: str, now: datetime, errors: list[str]
) -> tuple[datetime | None, datetime | None]:
    """(moment, end of a range written in the text) or (None, None) with a reason added."""
    if text:
        found = parse_datetime(text, now)
        if found is None:
            errors.append(t("dacts.error.time_unreadable", text=text))
            return None, None
        if found.needs_clock:
            errors.append(t("dacts.error.time_needs_clock", text=found.text))
            return None, None
        return found.start, found.end
    if picker:
        try:
            return _picker(picker), None
        except ValueError:
            errors.append(t("dacts.error.bad_picker"))
    return None, None


def _whole_number(value: str) -> int:
    number = whole_number(value, signed=True)
    if number is None:
        raise ValueError(value)
    return number


def parse_activity_form(form: FormData, *, need_org: bool) -> ParsedForm:
    """Turn the posted form into a draft; ``errors`` lists what to fix (draft None then)."""
    values = raw_values(form)
    parsed = ParsedForm(values)
    errors = parsed.errors
    now = clock.now()
    starts, range_end = read_time(values["starts_at"], values["starts_text"], now, errors)
    if starts is None and not errors:
        errors.append(t("dacts.error.starts_required"))
    ends = None
    if values["ends_text"] or values["ends_at"]:
        ends, _ = read_time(values["ends_at"], values["ends_text"], starts or now, errors)
    elif range_end is not None:
        ends = range_end
    elif starts is not None:
        errors.append(t("dacts.error.ends_required"))
    deadline, _ = read_time(values["deadline_at"], values["deadline_text"], now, errors)
    capacity: int | None = None
    if values["capacity"]:
        try:
            capacity = _whole_number(values["capacity"])
        except ValueError:
            errors.append(t("dacts.error.capacity_number"))
    rate = 0
    try:
        rate = _whole_number(values["points_rate"] or "0")
    except ValueError:
        errors.append(t("activities.error.bad_points"))
    mode = values["points_mode"] or HOURLY
    if mode not in (HOURLY, FIXED):
        errors.append(t("activities.error.bad_points"))
    community_id = as_id(values["community_id"])
    if community_id is None:
        errors.append(t("dacts.error.choose_community"))
    if need_org:
        parsed.org_id = as_id(values["org_id"])
        if parsed.org_id is None:
            errors.append(t("dacts.error.choose_org"))
    if errors:
        return parsed
    assert starts is not None and ends is not None and community_id is not None
    parsed.draft = ActivityDraft(
        title=values["title"],
        place=values["place"],
        community_id=community_id,
        category=values["category"],
        starts_at=starts,
        ends_at=ends,
        description=values["description"],
        signup_deadline=deadline,
        capacity=capacity,
        points_mode=mode,
        points_rate=rate,
    )
    return parsed


def _local(moment: datetime | None) -> str:
    return "" if moment is None else clock.local(moment).strftime(PICKER_FORMAT)


def activity_values(activity: Activity) -> dict[str, str]:
    """An existing activity as form values (the edit page opens with these)."""
    values = dict.fromkeys(TEXT_FIELDS, "")
    values.update(
        title=activity.title,
        description=activity.description,
        place=activity.place,
        community_id=str(activity.community_id),
        category=activity.category,
        starts_at=_local(activity.starts_at),
        ends_at=_local(activity.ends_at),
        deadline_at=_local(activity.signup_deadline),
        capacity="" if activity.capacity is None else str(activity.capacity),
        points_mode=activity.points_mode,
        points_rate=str(activity.points_rate),
        org_id=str(activity.org_id),
    )
    return values


def draft_changes(draft: ActivityDraft) -> dict[str, object]:
    """Every field of the draft: edit_activity works out itself what actually changed."""
    return {
        "title": draft.title,
        "place": draft.place,
        "community_id": draft.community_id,
        "category": draft.category,
        "starts_at": draft.starts_at,
        "ends_at": draft.ends_at,
        "description": draft.description,
        "signup_deadline": draft.signup_deadline,
        "capacity": draft.capacity,
        "points_mode": draft.points_mode,
        "points_rate": draft.points_rate,
    }


def keep_unchanged(draft: ActivityDraft, activity: Activity) -> ActivityDraft:
    """A time shown to the minute and sent back untouched keeps its stored value (seconds
    included), so re-saving a page does not count as moving the activity."""
    kept = {}
    for name in ("starts_at", "ends_at", "signup_deadline"):
        new, old = getattr(draft, name), getattr(activity, name)
        if new is not None and old is not None and _local(new) == _local(old):
            kept[name] = old
    return replace(draft, **kept) if kept else draft
