"""/staff/activities: organizers list, create, edit and follow their volunteer activities.

Pages only; the state changes after creation (publish, cancel, finish, attendance,
messages) are in activity_actions, the check-in screen in activity_checkin. Every handler
resolves the activity through scope.activity_for first, so another organization's (or
another community's) activity is a 404 whatever the URL asks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import (
    create_activity,
    edit_activity,
    list_org_activities,
    list_signups,
)
from community.activities.common import (
    DRAFT,
    FINISHED,
    HOURLY,
    PUBLISHED,
    WAITLIST,
    ActivityCard,
    card_for,
    points_text,
    seats_text,
)
from community.catalog import t
from community.errors import DomainError, NotFound
from community.orgs import list_organizations
from community.queues import organization_name
from community.scheduler import schedule_activity_jobs
from community.staff import actor_for
from community.timebank.certificates import format_hours
from nlp.taxonomy import CATEGORIES
from storage.db import transaction
from storage.models import Activity, StaffAccount
from web.dashboard import activity_actions, activity_checkin
from web.dashboard.activity_form import (
    TEXT_FIELDS,
    activity_values,
    draft_changes,
    keep_unchanged,
    parse_activity_form,
)
from web.dashboard.auth import Viewer
from web.dashboard.broadcasts import activity_bars
from web.dashboard.csrf import checked_form
from web.dashboard.render import flash, see_other
from web.dashboard.scope import (
    Id,
    activity_for,
    csrf_rejected,
    dacts,
    forbidden,
    form_communities,
    is_org,
    is_staff,
    mask_name,
    not_found,
    owner_org,
    page,
    sees_community,
)

LIST_LIMIT = 100


def _card_row(card: ActivityCard, org: str | None = None) -> dict[str, Any]:
    return {
        "id": card.id,
        "number": card.number,
        "title": card.title,
        "when": card.when,
        "place": card.place,
        "community": card.community,
        "status": card.status,
        "status_name": t(f"activities.status.{card.status}"),
        "signups": t("dacts.list.signups_fmt", confirmed=card.confirmed, waiting=card.waiting),
        "seats": seats_text(card),
        "starts_at": card.starts_at,
        "org": org,
    }


async def _list_rows(
    session: AsyncSession, viewer: StaffAccount, include_past: bool
) -> list[dict[str, Any]]:
    if viewer.role == "org":
        cards = await list_org_activities(
            session, viewer.org_id or 0, include_past=include_past, limit=LIST_LIMIT
        )
        return [_card_row(c) for c in cards]
    rows = []
    for org in await list_organizations(session, active_only=False):
        cards = await list_org_activities(session, org.id, include_past=include_past)
        rows += [_card_row(c, org.name) for c in cards if sees_community(viewer, c.community_id)]
    rows.sort(key=lambda r: (r["starts_at"], r["id"]), reverse=True)
    return rows[:LIST_LIMIT]


async def _form_context(
    session: AsyncSession,
    viewer: StaffAccount,
    values: dict[str, str],
    errors: list[str],
    activity: Activity | None = None,
) -> dict[str, Any]:
    orgs = []
    if activity is None and is_staff(viewer):
        orgs = [{"id": o.id, "name": o.name} for o in await list_organizations(session)]
    return {
        "values": values,
        "errors": errors,
        "communities": [
            {"id": c.id, "name": c.name} for c in await form_communities(session, viewer)
        ],
        "categories": list(CATEGORIES.items()),
        "orgs": orgs,
        "activity": activity,
        "locked": activity is not None and activity.status == PUBLISHED,
    }


def _signup_rows(rows: list[Any]) -> list[dict[str, Any]]:
    out, waiting = [], 0
    for r in rows:
        if r.status == WAITLIST:
            waiting += 1
            status = t("activities.signup_status.waitlist", position=waiting)
        else:
            status = t(f"activities.signup_status.{r.status}")
        out.append(
            {
                "id": r.signup_id,
                "user_id": r.user_id,
                "name": mask_name(r.name),
                "status": r.status,
                "status_name": status,
                "no_shows": r.no_shows,
                "checked_in_at": r.checked_in_at,
                "checked_out_at": r.checked_out_at,
                "attendance": r.attendance,
                "attendance_name": t(f"activities.attendance.{r.attendance}")
                if r.attendance
                else "",
                "hours": format_hours(r.hours) if r.hours else None,
                "points_credited": r.points_credited,
                "active": r.status != "cancelled",
            }
        )
    return out


async def _detail_context(
    session: AsyncSession, viewer: StaffAccount, activity: Activity
) -> dict[str, Any]:
    card = await card_for(session, activity)
    signups = await list_signups(session, activity_id=activity.id, org_id=owner_org(viewer))
    started = clock.now() >= activity.starts_at
    open_states = (DRAFT, PUBLISHED)
    return {
        "act": activity,
        "card": _card_row(card),
        "org_name": await organization_name(session, activity.org_id),
        "points": points_text(activity.points_mode, activity.points_rate),
        "category": CATEGORIES.get(activity.category, activity.category),
        "signups": _signup_rows(signups),
        "bars": await activity_bars(session, activity.id),
        "started": started,
        "can": {
            "edit": activity.status in open_states,
            "publish": activity.status == DRAFT,
            "cancel": activity.status in open_states,
            "finish": activity.status == PUBLISHED and started,
            "attend": activity.status in (PUBLISHED, FINISHED) and started,
            "message": activity.status in (PUBLISHED, FINISHED),
            "checkin": activity.status == PUBLISHED,
        },
        "is_staff": is_staff(viewer),
    }


@asynccontextmanager
async def _nav_texts(app: FastAPI) -> AsyncIterator[None]:
    """Every dashboard page (base.html) links to ours: give its template the link texts."""
    app.state.templates.env.globals["dacts_nav"] = dacts()["nav"]
    yield


def build_router() -> APIRouter:
    router = APIRouter(prefix="/staff", lifespan=_nav_texts)

    @router.get("/activities", response_class=HTMLResponse)
    async def activities_page(request: Request, viewer: Viewer, past: int = 0) -> Response:
        if not (is_org(viewer) or is_staff(viewer)):
            return forbidden(request, viewer)
        async with transaction(request.app.state.runtime.factory) as session:
            rows = await _list_rows(session, viewer, bool(past))
        context = {"rows": rows, "past": bool(past), "show_org": is_staff(viewer)}
        return page(request, "activities.html", context, viewer)

    # Declared before /activities/{activity_id}: "new" is not an id.
    @router.get("/activities/new", response_class=HTMLResponse)
    async def new_page(request: Request, viewer: Viewer) -> Response:
        if not (is_org(viewer) or is_staff(viewer)):
            return forbidden(request, viewer)
        values = dict.fromkeys(TEXT_FIELDS, "")
        values["points_mode"] = HOURLY
        async with transaction(request.app.state.runtime.factory) as session:
            context = await _form_context(session, viewer, values, [])
        return page(request, "activity_form.html", context, viewer)

    @router.post("/activities/new", response_class=HTMLResponse)
    async def create(request: Request, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        if not (is_org(viewer) or is_staff(viewer)):
            return forbidden(request, viewer)
        parsed = parse_activity_form(form, need_org=viewer.role != "org")
        factory = request.app.state.runtime.factory
        errors = parsed.errors
        if parsed.draft is not None:
            async with transaction(factory) as session:
                allowed = {c.id for c in await form_communities(session, viewer)}
            if parsed.draft.community_id not in allowed:
                errors.append(t("dacts.error.choose_community"))
            else:
                org_id = viewer.org_id if viewer.role == "org" else parsed.org_id
                try:
                    async with transaction(factory) as session:
                        activity = await create_activity(
                            session, org_id=org_id or 0, actor=actor_for(viewer), draft=parsed.draft
                        )
                except DomainError as exc:  # rolled back: nothing stored
                    errors.append(t(exc.key, **exc.params))
                else:
                    flash(request, "ok", t("dacts.flash.created"))
                    return see_other(f"/staff/activities/{activity.id}")
        async with transaction(factory) as session:
            context = await _form_context(session, viewer, parsed.values, errors)
        return page(request, "activity_form.html", context, viewer, status_code=400)

    @router.get("/activities/{activity_id}", response_class=HTMLResponse)
    async def detail(request: Request, activity_id: Id, viewer: Viewer) -> Response:
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                activity = await activity_for(session, activity_id, viewer)
            except NotFound:
                return not_found(request, viewer)
            context = await _detail_context(session, viewer, activity)
        return page(request, "activity_detail.html", context, viewer)

    @router.get("/activities/{activity_id}/edit", response_class=HTMLResponse)
    async def edit_page(request: Request, activity_id: Id, viewer: Viewer) -> Response:
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                activity = await activity_for(session, activity_id, viewer)
            except NotFound:
                return not_found(request, viewer)
            if activity.status not in (DRAFT, PUBLISHED):
                flash(request, "error", t("activities.error.cannot_edit"))
                return see_other(f"/staff/activities/{activity_id}")
            context = await _form_context(session, viewer, activity_values(activity), [], activity)
        return page(request, "activity_form.html", context, viewer)

    @router.post("/activities/{activity_id}/edit", response_class=HTMLResponse)
    async def edit(request: Request, activity_id: Id, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        factory = request.app.state.runtime.factory
        parsed = parse_activity_form(form, need_org=False)
        errors = parsed.errors
        try:
            async with transaction(factory) as session:
                activity = await activity_for(session, activity_id, viewer)
                if parsed.draft is not None:
                    result = await edit_activity(
                        session,
                        activity_id=activity.id,
                        org_id=owner_org(viewer),
                        actor=actor_for(viewer),
                        changes=draft_changes(keep_unchanged(parsed.draft, activity)),
                    )
        except NotFound:
            return not_found(request, viewer)
        except DomainError as exc:
            errors.append(t(exc.key, **exc.params))
        else:
            if parsed.draft is not None:
                if result.changed:
                    schedule_activity_jobs(result.activity)
                    request.app.state.runtime.wake_outbox()
                key = "edited" if result.changed else "unchanged"
                flash(request, "ok", t(f"dacts.flash.{key}", count=result.notified))
                return see_other(f"/staff/activities/{activity_id}")
        async with transaction(factory) as session:
            activity = await activity_for(session, activity_id, viewer)
            context = await _form_context(session, viewer, parsed.values, errors, activity)
        return page(request, "activity_form.html", context, viewer, status_code=400)

    router.include_router(activity_actions.build_router())
    router.include_router(activity_checkin.build_router())
    return router
