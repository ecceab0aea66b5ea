"""Volunteer activities: organizers create and publish, residents sign up, attendance earns points.

    draft ──publish──▶ published ──finish (after the start)──▶ finished (points credited)
      │                    │
      └──────cancel────────┴──▶ cancelled

A sign-up is ``confirmed`` or ``waitlist`` (first come, first served; moved up automatically
when a seat frees) or ``cancelled``; attendance is ``attended`` (checked in and out with the
rotating code, or confirmed by the organizer) or ``no_show``.

Button payloads the dialog engine understands in any state (see ``common``):
``ac.<id>`` details, ``as.<id>`` sign up, ``ax.<id>`` cancel my sign-up, ``am`` my activities.

Modules: ``drafts`` (what an organizer fills in, and its rules), ``organize``
(create/publish/edit/cancel), ``signups`` (sign up, cancel, waiting
list), ``browse`` (lists and details), ``roster`` (the organizer's list and messages),
``attendance`` (confirm, no-show, finish → points), ``jobs`` (what the scheduler runs).
Check-in codes live in ``community.checkin``; the scheduler in ``community.scheduler``.
"""

from community.activities.attendance import (
    AttendanceResult,
    FinishResult,
    attended_hours,
    confirm_attendance,
    finish_activity,
    mark_no_show,
)
from community.activities.browse import (
    ActivityDetails,
    MyActivity,
    activity_details,
    list_org_activities,
    list_upcoming,
    my_activities,
)
from community.activities.common import (
    PAYLOAD_CANCEL,
    PAYLOAD_DETAILS,
    PAYLOAD_MINE,
    PAYLOAD_SIGNUP,
    ActivityCard,
    cancel_payload,
    details_payload,
    format_when,
    parse_payload,
    signup_payload,
)
from community.activities.drafts import ActivityDraft
from community.activities.organize import (
    EditResult,
    cancel_activity,
    create_activity,
    edit_activity,
    publish_activity,
)
from community.activities.roster import SignupRow, list_signups, message_signups
from community.activities.signups import (
    CancelResult,
    SignupResult,
    cancel_signup,
    count_no_shows,
    sign_up,
)

__all__ = [
    "PAYLOAD_CANCEL",
    "PAYLOAD_DETAILS",
    "PAYLOAD_MINE",
    "PAYLOAD_SIGNUP",
    "ActivityCard",
    "ActivityDetails",
    "ActivityDraft",
    "AttendanceResult",
    "CancelResult",
    "EditResult",
    "FinishResult",
    "MyActivity",
    "SignupResult",
    "SignupRow",
    "activity_details",
    "attended_hours",
    "cancel_activity",
    "cancel_payload",
    "cancel_signup",
    "confirm_attendance",
    "count_no_shows",
    "create_activity",
    "details_payload",
    "edit_activity",
    "finish_activity",
    "format_when",
    "list_org_activities",
    "list_signups",
    "list_upcoming",
    "mark_no_show",
    "message_signups",
    "my_activities",
    "parse_payload",
    "publish_activity",
    "sign_up",
    "signup_payload",
]
