"""The organizer's full-screen check-in display: a big rotating 6-digit code and its QR code.

The page polls a small JSON endpoint every few seconds (web/static/activities.js) and swaps
the QR image when the code turns over; without JavaScript it reloads itself instead. The
code is community.checkin's TOTP (60 s steps, the neighbouring steps also accepted), so a
resident reading it just before it changes is still fine.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from community import clock
from community.activities.common import PUBLISHED, format_when
from community.catalog import t
from community.checkin import checkin_display, checkin_qr_svg
from community.errors import NotFound
from storage.db import transaction
from web.dashboard.auth import Viewer
from web.dashboard.render import SECURITY_HEADERS, flash, see_other
from web.dashboard.scope import Id, activity_for, not_found, page, public_base

REFRESH_SECONDS = 5
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _window(opens_at: datetime, closes_at: datetime) -> str:
    now = clock.now()
    if now < opens_at:
        return "not_yet"
    if now > closes_at:
        return "closed"
    return "open"


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/activities/{activity_id}/checkin", response_class=HTMLResponse)
    async def display(request: Request, activity_id: Id, viewer: Viewer) -> Response:
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                activity = await activity_for(session, activity_id, viewer)
            except NotFound:
                return not_found(request, viewer)
        if activity.status != PUBLISHED:
            flash(request, "error", t("dacts.checkin.not_published"))
            return see_other(f"/staff/activities/{activity_id}")
        shown = checkin_display(activity, public_base(request))
        context = {
            "act": activity,
            "when": format_when(activity.starts_at, activity.ends_at),
            "code": shown.code,
            "seconds_left": shown.seconds_left,
            "window": _window(shown.opens_at, shown.closes_at),
            "opens_at": shown.opens_at,
            "closes_at": shown.closes_at,
            "refresh": REFRESH_SECONDS,
        }
        return page(request, "checkin_display.html", context, viewer)

    @router.get("/activities/{activity_id}/checkin.json")
    async def display_json(request: Request, activity_id: Id, viewer: Viewer) -> Response:
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                activity = await activity_for(session, activity_id, viewer)
            except NotFound:
                return JSONResponse({"error": "not_found"}, status_code=404, headers=NO_STORE)
        if activity.status != PUBLISHED:
            body = {"error": "not_published", "message": t("dacts.checkin.not_published")}
            return JSONResponse(body, status_code=409, headers=NO_STORE)
        shown = checkin_display(activity, public_base(request))
        body = {
            "code": shown.code,
            "seconds_left": shown.seconds_left,
            "refresh_seconds": REFRESH_SECONDS,
            "url": shown.url,
            "qr": f"/staff/activities/{activity.id}/checkin.svg?c={shown.code}",
            "window": _window(shown.opens_at, shown.closes_at),
            "opens_at": shown.opens_at.isoformat(),
            "closes_at": shown.closes_at.isoformat(),
        }
        return JSONResponse(body, headers=NO_STORE)

    @router.get("/activities/{activity_id}/checkin.svg")
    async def display_qr(request: Request, activity_id: Id, viewer: Viewer) -> Response:
        """The QR of the current code (``?c=`` only defeats caches; it is not read)."""
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                activity = await activity_for(session, activity_id, viewer)
            except NotFound:
                return Response(status_code=404, headers=NO_STORE)
        if activity.status != PUBLISHED:
            return Response(status_code=409, headers=NO_STORE)
        svg = checkin_qr_svg(activity, public_base(request))
        headers = {**SECURITY_HEADERS, **NO_STORE}
        return Response(svg, media_type="image/svg+xml", headers=headers)

    return router
