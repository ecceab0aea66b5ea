"""The organizer's buttons on an activity: publish, cancel, finish, message, attendance.

One form post → one community action in one transaction, after the CSRF check and the
visibility check (scope.activity_for: out of reach is 404). Refusals come back as a
flash on the activity page (Post/Redirect/Get); nothing was stored then. Jobs are
(re)planned and the workers woken only after the commit, as community.activities asks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from community.activities import (
    cancel_activity,
    confirm_attendance,
    finish_activity,
    list_signups,
    mark_no_show,
    message_signups,
    publish_activity,
)
from community.activities.common import PUBLISHED
from community.catalog import t
from community.errors import DomainError, NotFound
from community.scheduler import schedule_activity_jobs, unschedule_activity_jobs
from community.staff import actor_for
from storage.db import transaction
from storage.models import Activity, StaffAccount
from web.dashboard.auth import Viewer
from web.dashboard.csrf import checked_form
from web.dashboard.render import flash, see_other
from web.dashboard.scope import Id, activity_for, csrf_rejected, not_found, owner_org

# (session, viewer, activity, form) → the flash text; raises DomainError to refuse.
Action = Callable[[AsyncSession, StaffAccount, Activity, FormData], Awaitable[str]]


def _text(form: FormData, name: str, limit: int = 600) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _publish(session: AsyncSession, viewer: StaffAccount, act: Activity, _: FormData) -> str:
    await publish_activity(
        session, activity_id=act.id, org_id=owner_org(viewer), actor=actor_for(viewer)
    )
    return t("dacts.flash.published")


async def _cancel(
    session: AsyncSession, viewer: StaffAccount, act: Activity, form: FormData
) -> str:
    reason = _text(form, "reason", 500)
    if act.status == PUBLISHED and not reason:  # residents are told why
        raise DomainError("dacts.error.cancel_reason")
    await cancel_activity(
        session,
        activity_id=act.id,
        org_id=owner_org(viewer),
        actor=actor_for(viewer),
        reason=reason,
    )
    return t("dacts.flash.cancelled")


async def _finish(session: AsyncSession, viewer: StaffAccount, act: Activity, _: FormData) -> str:
    result = await finish_activity(
        session, activity_id=act.id, org_id=owner_org(viewer), actor=actor_for(viewer)
    )
    return t(
        "dacts.flash.finished",
        attended=result.attended,
        points=result.points,
        no_shows=result.no_shows,
    )


async def _message(
    session: AsyncSession, viewer: StaffAccount, act: Activity, form: FormData
) -> str:
    count = await message_signups(
        session,
        activity_id=act.id,
        org_id=owner_org(viewer),
        actor=actor_for(viewer),
        text=_text(form, "text"),
        include_waitlist=form.get("waitlist") == "1",
    )
    return t("dacts.flash.messaged", count=count)


ACTIONS: dict[str, Action] = {
    "publish": _publish,
    "cancel": _cancel,
    "finish": _finish,
    "message": _message,
}

REPLAN = frozenset({"publish", "cancel", "finish"})  # these change which jobs are due


def _hours(raw: str) -> float | None:
    """Empty → None (the domain works it out from check-in/out); else a number of hours."""
    if not raw:
        return None
    try:
        value = float(raw.replace("，", ".").replace("小时", ""))
    except ValueError:
        raise DomainError("dacts.error.hours_number") from None
    if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
        raise DomainError("dacts.error.hours_number")
    return value


async def _signup_action(
    session: AsyncSession,
    viewer: StaffAccount,
    act: Activity,
    signup_id: int,
    verb: str,
    form: FormData,
) -> str:
    # The sign-up must belong to this activity: a staff member's reach was checked on the
    # activity, and the domain (org_id None for staff) would not check it again.
    rows = await list_signups(session, activity_id=act.id, org_id=owner_org(viewer))
    if signup_id not in {r.signup_id for r in rows}:
        raise NotFound("activities.error.not_signed_up")
    if verb == "attend":
        result = await confirm_attendance(
            session,
            signup_id=signup_id,
            org_id=owner_org(viewer),
            actor=actor_for(viewer),
            hours=_hours(_text(form, "hours", 16)),
        )
        return t("dacts.flash.attended", hours=_fmt_hours(result.hours), points=result.points)
    await mark_no_show(
        session, signup_id=signup_id, org_id=owner_org(viewer), actor=actor_for(viewer)
    )
    return t("dacts.flash.no_show")


def _fmt_hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f}".rstrip("0").rstrip(".")


async def _run(
    request: Request, viewer: StaffAccount, activity_id: int, step: Any, *, replan: bool = False
) -> Response:
    """CSRF, then visibility, then the action in one transaction; PRG back to the page."""
    form = await checked_form(request)
    if form is None:
        return csrf_rejected(request, viewer)
    runtime = request.app.state.runtime
    back = f"/staff/activities/{activity_id}"
    try:
        async with transaction(runtime.factory) as session:
            activity = await activity_for(session, activity_id, viewer)
            text = await step(session, activity, form)
    except NotFound:
        return not_found(request, viewer)
    except DomainError as exc:  # rolled back: nothing changed
        flash(request, "error", t(exc.key, **exc.params))
        return see_other(back)
    if replan and activity.status == PUBLISHED:
        schedule_activity_jobs(activity)
    elif replan:
        unschedule_activity_jobs(activity.id)
    runtime.wake_broadcasts()
    runtime.wake_outbox()
    flash(request, "ok", text)
    return see_other(back)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post("/activities/{activity_id}/signups/{signup_id}/{verb}")
    async def signup_action(
        request: Request, activity_id: Id, signup_id: Id, verb: str, viewer: Viewer
    ) -> Response:
        if verb not in ("attend", "no_show"):
            return not_found(request, viewer)

        async def step(session: AsyncSession, activity: Activity, form: FormData) -> str:
            return await _signup_action(session, viewer, activity, signup_id, verb, form)

        return await _run(request, viewer, activity_id, step)

    @router.post("/activities/{activity_id}/{verb}")
    async def activity_action(
        request: Request, activity_id: Id, verb: str, viewer: Viewer
    ) -> Response:
        action = ACTIONS.get(verb)
        if action is None:
            return not_found(request, viewer)

        async def step(session: AsyncSession, activity: Activity, form: FormData) -> str:
            return await action(session, viewer, activity, form)

        return await _run(request, viewer, activity_id, step, replan=verb in REPLAN)

    return router
