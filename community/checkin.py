"""Check-in and check-out at an activity with the code the organizer shows.

The code is a TOTP (RFC 6238: HMAC-SHA1, 6 digits) over ``Activity.checkin_secret`` with a
60 s step; the current step and one on either side are accepted, so a code read out just
before it turns over still works. It is written here with ``hmac`` rather than pyotp:
the algorithm is a dozen lines checked against the RFC's test vectors, and we need to say
"expired" (a code from a few minutes ago) apart from "wrong", which pyotp's ``verify``
does not. Codes are accepted only from 30 minutes before the start to 30 minutes after
the end. The QR code carries the same code in a URL the web chat opens:
``<base_url>/checkin/<activity number>?c=<code>``.

A code only proves that someone saw the organizer's screen recently; a photo passed on
could be used from elsewhere, which is why the organizer confirms attendance at finish.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import common as c
from community.activities.attendance import attended_hours
from community.audit import Actor, record_audit
from community.errors import DomainError
from storage.models import Activity, ActivitySignup

STEP_SECONDS = 60
DIGITS = 6
TOLERANCE_STEPS = 1
EXPIRED_LOOKBACK_STEPS = 60  # an older match than the tolerance is "expired", not "wrong"
WINDOW_MARGIN = timedelta(minutes=30)


def totp(secret_b32: str, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP of ``counter`` (RFC 6238 passes the time step as the counter)."""
    padded = secret_b32.upper() + "=" * (-len(secret_b32) % 8)
    mac = hmac.new(base64.b32decode(padded), counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _step(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def checkin_code(activity: Activity, at: datetime | None = None) -> str:
    """The code to show right now."""
    return totp(activity.checkin_secret, _step(at or clock.now()))


def code_status(activity: Activity, code: str, at: datetime | None = None) -> str:
    """``"ok"``, ``"expired"`` (an earlier code of this activity) or ``"bad"``."""
    typed = "".join(code.split())
    if len(typed) != DIGITS or not typed.isdigit():
        return "bad"
    step = _step(at or clock.now())
    secret = activity.checkin_secret
    for delta in range(-TOLERANCE_STEPS, TOLERANCE_STEPS + 1):
        if hmac.compare_digest(totp(secret, step + delta), typed):
            return "ok"
    for back in range(TOLERANCE_STEPS + 1, EXPIRED_LOOKBACK_STEPS + 1):
        if hmac.compare_digest(totp(secret, step - back), typed):
            return "expired"
    return "bad"


def checkin_window(activity: Activity) -> tuple[datetime, datetime]:
    return activity.starts_at - WINDOW_MARGIN, activity.ends_at + WINDOW_MARGIN


def checkin_url(activity: Activity, base_url: str, at: datetime | None = None) -> str:
    return f"{base_url.rstrip('/')}/checkin/{activity.number}?c={checkin_code(activity, at)}"


def checkin_qr_svg(activity: Activity, base_url: str, at: datetime | None = None) -> bytes:
    """The check-in URL as an SVG QR code (for the organizer's screen)."""
    import segno  # imported here: only the organizer's check-in page needs it

    out = io.BytesIO()
    qr = segno.make(checkin_url(activity, base_url, at), error="m")
    qr.save(out, kind="svg", scale=8, border=2, xmldecl=False, svgns=True)
    return out.getvalue()


@dataclass(frozen=True)
class CheckinDisplay:
    """What the organizer's check-in screen shows; refresh it when ``seconds_left`` runs out."""

    code: str
    url: str
    seconds_left: int
    opens_at: datetime
    closes_at: datetime


def checkin_display(activity: Activity, base_url: str) -> CheckinDisplay:
    now = clock.now()
    opens, closes = checkin_window(activity)
    return CheckinDisplay(
        code=checkin_code(activity, now),
        url=checkin_url(activity, base_url, now),
        seconds_left=STEP_SECONDS - int(now.timestamp()) % STEP_SECONDS,
        opens_at=opens,
        closes_at=closes,
    )


@dataclass(frozen=True)
class CheckinResult:
    signup_id: int
    activity_id: int
    title: str
    at: datetime
    hours: float | None = None  # set by check-out


async def _locked_signup(
    session: AsyncSession, user_id: int, activity_id: int | None, number: str | None
) -> tuple[Activity, ActivitySignup]:
    """Resolve the activity (by id or by the number in a QR link) and the resident's sign-up."""
    if (activity_id is None) == (number is None):
        raise ValueError("give exactly one of activity_id, number")
    if number is not None:
        activity_id = (await c.load_activity_by_number(session, number)).id
    assert activity_id is not None
    activity = await c.load_activity(session, activity_id, lock=True)
    if activity.status == c.DRAFT:
        raise DomainError("activities.error.not_found")
    if activity.status == c.CANCELLED:
        raise DomainError("activities.error.cancelled")
    if activity.status == c.FINISHED:
        raise DomainError("activities.error.finished")
    now = clock.now()
    opens, closes = checkin_window(activity)
    if now < opens:
        raise DomainError("activities.error.checkin_not_open")
    if now > closes:
        raise DomainError("activities.error.checkin_closed")
    signup = await session.scalar(
        select(ActivitySignup)
        .where(ActivitySignup.activity_id == activity.id, ActivitySignup.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    if signup is None or signup.status == c.WITHDRAWN:
        raise DomainError("activities.error.not_signed_up")
    if signup.status == c.WAITLIST:
        raise DomainError("activities.error.on_waitlist")
    return activity, signup


def _check_code(activity: Activity, code: str) -> None:
    status = code_status(activity, code)
    if status == "expired":
        raise DomainError("activities.error.expired_code")
    if status != "ok":
        raise DomainError("activities.error.bad_code")


async def check_in(
    session: AsyncSession,
    *,
    user_id: int,
    code: str,
    activity_id: int | None = None,
    number: str | None = None,
    via: str = "code",
) -> CheckinResult:
    """Record arrival; ``via`` is ``code`` (typed) or ``qr`` (the scanned link)."""
    activity, signup = await _locked_signup(session, user_id, activity_id, number)
    if signup.checked_in_at is not None:
        raise DomainError("activities.error.already_checked_in")
    _check_code(activity, code)
    now = clock.now()
    signup.checked_in_at = signup.updated_at = now
    signup.checkin_method = via if via in ("code", "qr") else "code"
    if signup.attendance == c.NO_SHOW and signup.points_txn_id is None:
        signup.attendance = None  # marked absent too early: they came after all
    record_audit(
        session,
        Actor("resident", str(user_id)),
        "activity.checkin",
        f"activity:{activity.id}",
        {"signup": signup.id, "via": signup.checkin_method},
    )
    return CheckinResult(signup.id, activity.id, activity.title, now)


async def check_out(
    session: AsyncSession,
    *,
    user_id: int,
    code: str,
    activity_id: int | None = None,
    number: str | None = None,
) -> CheckinResult:
    """Record leaving; the hours present within the activity's span count for points."""
    activity, signup = await _locked_signup(session, user_id, activity_id, number)
    if signup.checked_in_at is None:
        raise DomainError("activities.error.not_checked_in")
    if signup.checked_out_at is not None:
        raise DomainError("activities.error.already_checked_out")
    _check_code(activity, code)
    now = clock.now()
    hours = attended_hours(signup.checked_in_at, now, activity.starts_at, activity.ends_at)
    signup.checked_out_at = signup.updated_at = now
    if signup.points_txn_id is None:
        signup.attendance, signup.hours = c.ATTENDED, hours
    record_audit(
        session,
        Actor("resident", str(user_id)),
        "activity.checkout",
        f"activity:{activity.id}",
        {"signup": signup.id, "hours": hours},
    )
    return CheckinResult(signup.id, activity.id, activity.title, now, hours)


__all__ = [
    "CheckinDisplay",
    "CheckinResult",
    "check_in",
    "check_out",
    "checkin_code",
    "checkin_display",
    "checkin_qr_svg",
    "checkin_url",
    "checkin_window",
    "code_status",
    "totp",
]
