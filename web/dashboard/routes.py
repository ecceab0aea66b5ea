"""Routes of the dashboard (/staff): login, the review queue or org inbox, detail, actions.

Handlers stay thin: they authorize through web.dashboard.auth, read through
community.queues, change state through community actions (web.dashboard.actions), and
render catalog texts. Every POST is CSRF-checked before anything else happens.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from community import queues
from community.catalog import t
from community.errors import DomainError, Forbidden, NotFound
from community.staff import authenticate
from nlp.taxonomy import CATEGORIES
from storage.db import transaction
from storage.models import StaffAccount
from web.dashboard import actions
from web.dashboard.auth import (
    SESSION_STAFF,
    LoginThrottle,
    Viewer,
    client_key,
    end_session,
    start_session,
)
from web.dashboard.csrf import checked_form
from web.dashboard.render import error_page, flash, render, see_other, texts

# Each failed login costs the caller this long (on top of argon2): slows guessing.
FAILURE_DELAY_S = 0.3


def _csrf_rejected(request: Request, viewer: StaffAccount | None = None) -> HTMLResponse:
    dash = texts()
    return error_page(request, 403, dash["error"]["csrf_title"], dash["error"]["csrf"], viewer)


def _not_found(request: Request, viewer: StaffAccount) -> HTMLResponse:
    dash = texts()
    return error_page(
        request, 404, dash["error"]["not_found_title"], dash["error"]["not_found"], viewer
    )


def _forbidden(request: Request, viewer: StaffAccount) -> HTMLResponse:
    dash = texts()
    return error_page(request, 403, dash["error"]["forbidden"], dash["error"]["forbidden"], viewer)


def _login_page(request: Request, error: str | None, username: str, status: int) -> HTMLResponse:
    context = {"error": error, "username": username}
    return render(request, "login.html", context, status_code=status)


def _tabs(names: tuple[str, ...], counts: dict[str, int], current: str) -> list[dict[str, object]]:
    labels = texts()["tab"]
    return [
        {"key": n, "label": labels[n], "count": counts.get(n, 0), "active": n == current}
        for n in names
    ]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/staff")
    throttle = LoginThrottle()

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> Response:
        if isinstance(request.session.get(SESSION_STAFF), int):
            return see_other("/staff")
        return _login_page(request, None, "", 200)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        if form is None:
            return _csrf_rejected(request)
        username = str(form.get("username") or "")[:64]
        password = str(form.get("password") or "")[:256]
        dash = texts()["login"]
        if not username.strip() or not password:
            return _login_page(request, dash["required"], username, 400)
        key = client_key(request, username)
        if throttle.locked(key):
            return _login_page(request, dash["locked"], username, 429)
        async with transaction(request.app.state.runtime.factory) as session:
            account = await authenticate(session, username, password)
        if account is None:
            throttle.failure(key)
            await asyncio.sleep(FAILURE_DELAY_S)
            return _login_page(request, dash["failed"], username, 401)
        throttle.success(key)
        start_session(request, account)
        return see_other("/staff")

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await checked_form(request)
        if form is None:
            return _csrf_rejected(request)
        end_session(request)
        flash(request, "ok", texts()["login"]["logged_out"])
        return see_other("/staff/login")

    @router.get("", response_class=HTMLResponse)
    async def home(request: Request, viewer: Viewer, tab: str = "") -> Response:
        async with transaction(request.app.state.runtime.factory) as session:
            if viewer.role == "org" and viewer.org_id is not None:
                tab = tab if tab in queues.ORG_FILTERS else "new"
                rows = await queues.org_inbox(session, viewer.org_id, tab)
                counts = await queues.org_counts(session, viewer.org_id)
                org_name = await queues.organization_name(session, viewer.org_id)
                heading = texts()["heading"]["inbox"].format(org=org_name)
                tabs = _tabs(queues.ORG_FILTERS, counts, tab)
            elif viewer.role in queues.STAFF_ROLES:
                tab = tab if tab in queues.REVIEW_FILTERS else "all"
                rows = await queues.review_queue(session, viewer, tab)
                counts = await queues.review_counts(session, viewer)
                heading = texts()["heading"]["review"]
                tabs = _tabs(queues.REVIEW_FILTERS, counts, tab)
            else:
                return _forbidden(request, viewer)
        context = {
            "heading": heading,
            "tabs": tabs,
            "rows": rows,
            "limit": queues.LIST_LIMIT,
            "is_org": viewer.role == "org",
        }
        return render(request, "list.html", context, viewer=viewer)

    @router.get("/requests/{request_id}", response_class=HTMLResponse)
    async def detail(request: Request, request_id: int, viewer: Viewer) -> Response:
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                item = await queues.load_request_for(session, request_id, viewer)
            except NotFound:
                return _not_found(request, viewer)
            view = await queues.request_view(session, item, viewer)
            choices = (
                await queues.org_choices(session, item) if viewer.role in queues.STAFF_ROLES else []
            )
        context = {
            "r": view,
            "choices": choices,
            "is_org": viewer.role == "org",
            "is_staff": viewer.role in queues.STAFF_ROLES,
            "categories": list(CATEGORIES.items()),
            "heading": texts()["heading"]["detail"].format(number=view["number"]),
        }
        return render(request, "detail.html", context, viewer=viewer)

    @router.post("/requests/{request_id}/{action}")
    async def act(request: Request, request_id: int, action: str, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return _csrf_rejected(request, viewer)
        if action not in actions.ALL_ACTIONS:
            return _not_found(request, viewer)
        runtime = request.app.state.runtime
        try:
            async with transaction(runtime.factory) as session:
                await actions.perform(session, viewer, request_id, action, form)
        except NotFound:
            return _not_found(request, viewer)
        except Forbidden:
            return _forbidden(request, viewer)
        except DomainError as exc:  # rolled back: nothing changed
            flash(request, "error", t(exc.key, **exc.params))
            return see_other(f"/staff/requests/{request_id}")
        runtime.wake_outbox()
        flash(request, "ok", texts()["flash"][action])
        return see_other(actions.after_url(request_id, action))

    return router
