"""The resident's check-in page, opened from the QR code: ``/checkin/<number>?c=<code>``.

The resident is the web chat's visitor (the signed ``linli_web`` cookie, web.visitor); a
phone that never opened the chat is not identified, so the page asks them to type the
code in the chat instead. Opening the link changes nothing (link previews and scanners
open links too): the page shows one big button, and the press (a POST) checks in — or out,
once checked in — through community.checkin with ``via="qr"``. After the press the page is
reloaded without the code and says what the database now holds (Post/Redirect/Get).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.activities import my_activities
from community.activities.common import (
    CANCELLED,
    DRAFT,
    FINISHED,
    WAITLIST,
    format_when,
    load_activity_by_number,
)
from community.catalog import section, t
from community.checkin import check_in, check_out, checkin_window, code_status
from community.errors import DomainError, NotFound
from community.webchat import web_identity
from storage.db import transaction
from storage.models import Activity
from web.dashboard.csrf import origin_ok
from web.dashboard.render import SECURITY_HEADERS, see_other
from web.visitor import visitor_id

Number = Annotated[str, Path(max_length=20, pattern=r"^[A-Za-z0-9-]+$")]


def _texts() -> dict[str, str]:
    return section("dacts.resident")


def _token(request: Request, visitor: str, number: str) -> str:
    """A form token bound to this visitor and activity (the cookie is SameSite=Lax too)."""
    secret = request.app.state.runtime.settings.secret_key.get_secret_value().encode()
    message = f"checkin:{visitor}:{number}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _code(raw: str) -> str:
    return "".join(raw.split())[:12]


def resident_page(
    request: Request, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    response = request.app.state.templates.TemplateResponse(
        request,
        "dashboard/resident.html",
        {"r": _texts(), "static_url": "/static", **context},
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _not_found(request: Request) -> HTMLResponse:
    r = _texts()
    return resident_page(
        request, {"heading": r["title"], "message": r["not_found"]}, status_code=404
    )


def _activity_facts(activity: Activity) -> dict[str, Any]:
    return {
        "title": activity.title,
        "when": format_when(activity.starts_at, activity.ends_at),
        "place": activity.place,
        "number": activity.number,
    }


async def _state(session: AsyncSession, user_id: int, activity: Activity) -> tuple[str, Any]:
    """What the resident can do now: ("in"|"out"|"done"|"blocked", detail)."""
    if activity.status == CANCELLED:
        return "blocked", t("activities.error.cancelled")
    if activity.status == FINISHED:
        return "blocked", t("activities.error.finished")
    mine = {
        m.card.id: m for m in await my_activities(session, user_id, include_past=True, limit=50)
    }
    signup = mine.get(activity.id)
    if signup is None or signup.status == "cancelled":
        return "blocked", t("activities.error.not_signed_up")
    if signup.status == WAITLIST:
        return "blocked", t("activities.error.on_waitlist")
    if signup.checked_in_at is None:
        return "in", None
    if signup.checked_out_at is None:
        return "out", signup.checked_in_at
    return "done", signup.hours


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/checkin/{number}", response_class=HTMLResponse)
    async def checkin_page(request: Request, number: Number, c: str = "", ok: str = "") -> Response:
        r, code = _texts(), _code(c)
        visitor = visitor_id(request)
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                activity = await load_activity_by_number(session, number)
            except NotFound:
                return _not_found(request)
            if activity.status == DRAFT:
                return _not_found(request)
            context: dict[str, Any] = {"act": _activity_facts(activity), "heading": r["title"]}
            if visitor is None:
                message = r["need_chat_code"].format(code=code) if code else r["need_chat"]
                return resident_page(request, {**context, "message": message, "chat_link": True})
            identity = await web_identity(session, visitor)
            state, detail = await _state(session, identity.user_id, activity)
        now = clock.now()
        opens, closes = checkin_window(activity)
        local = clock.local
        if state == "blocked":
            context["message"] = detail
        elif state == "done":
            context["heading"] = r["done"]
            context["message"] = r["done_hours"].format(hours=detail) if detail else None
        elif now < opens:
            context["message"] = t("activities.error.checkin_not_open")
        elif now > closes:
            context["message"] = t("activities.error.checkin_closed")
        elif state == "out" and not code:
            context["heading"] = r["checked_in"] if ok == "in" else r["title"]
            context["message"] = r["checked_in_at"].format(time=f"{local(detail):%H:%M}")
        elif not code:
            context["message"] = r["no_code"]
        elif (status := code_status(activity, code)) != "ok":
            key = "expired_code" if status == "expired" else "bad_code"
            context["message"] = t(f"activities.error.{key}") + r["scan_again"]
        else:
            context["action"] = state
            context["code"] = code
            context["token"] = _token(request, visitor, activity.number)
            if state == "out":
                context["message"] = r["checked_in_at"].format(time=f"{local(detail):%H:%M}")
        return resident_page(request, context)

    @router.post("/checkin/{number}", response_class=HTMLResponse)
    async def checkin_press(request: Request, number: Number) -> Response:
        r = _texts()
        visitor = visitor_id(request)
        form = await request.form()
        if visitor is None or not origin_ok(request):
            return resident_page(
                request,
                {"heading": r["title"], "message": r["need_chat"], "chat_link": True},
                status_code=403,
            )
        sent = form.get("token")
        if not isinstance(sent, str) or not hmac.compare_digest(
            sent, _token(request, visitor, number)
        ):
            return resident_page(
                request, {"heading": r["title"], "message": r["expired_page"]}, status_code=403
            )
        code = _code(str(form.get("c") or ""))
        leaving = form.get("action") == "out"
        try:
            async with transaction(request.app.state.runtime.factory) as session:
                identity = await web_identity(session, visitor)
                if leaving:
                    await check_out(session, user_id=identity.user_id, code=code, number=number)
                else:
                    await check_in(
                        session, user_id=identity.user_id, code=code, number=number, via="qr"
                    )
        except DomainError as exc:  # rolled back: nothing recorded
            message = t(exc.key, **exc.params)
            if exc.key in ("activities.error.bad_code", "activities.error.expired_code"):
                message += r["scan_again"]
            return resident_page(
                request, {"heading": r["title"], "message": message}, status_code=400
            )
        return see_other(f"/checkin/{number}?ok={'out' if leaving else 'in'}")

    return router
