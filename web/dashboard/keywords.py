"""/staff/keywords: staff add or remove classifier keywords per category (audited, live)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from community import keywords
from community.catalog import t
from community.errors import DomainError
from community.queues import STAFF_ROLES
from community.staff import actor_for
from nlp.taxonomy import CATEGORIES
from storage.db import transaction
from web.dashboard.auth import Viewer
from web.dashboard.csrf import checked_form
from web.dashboard.render import error_page, flash, render, see_other, texts

ACTIONS = ("add", "remove", "reset")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/staff")

    @router.get("/keywords", response_class=HTMLResponse)
    async def keywords_page(request: Request, viewer: Viewer) -> Response:
        if viewer.role not in STAFF_ROLES:
            dash = texts()
            return error_page(
                request, 403, dash["error"]["forbidden"], dash["error"]["forbidden"], viewer
            )
        async with transaction(request.app.state.runtime.factory) as session:
            rows = await keywords.list_keywords(session)
        context = {
            "rows": [
                {
                    "category": CATEGORIES.get(r.category, r.category),
                    "category_id": r.category,
                    "term": r.term,
                    "action": r.action,
                    "by": r.created_by,
                }
                for r in rows
            ],
            "categories": list(CATEGORIES.items()),
        }
        return render(request, "keywords.html", context, viewer=viewer)

    @router.post("/keywords", response_class=HTMLResponse)
    async def keywords_change(request: Request, viewer: Viewer) -> Response:
        form = await checked_form(request)
        dash = texts()
        if form is None:
            return error_page(
                request, 403, dash["error"]["csrf_title"], dash["error"]["csrf"], viewer
            )
        if viewer.role not in STAFF_ROLES:
            return error_page(
                request, 403, dash["error"]["forbidden"], dash["error"]["forbidden"], viewer
            )
        action = str(form.get("action") or "")
        category = str(form.get("category") or "")
        term = str(form.get("term") or "")
        runtime = request.app.state.runtime
        try:
            async with transaction(runtime.factory) as session:
                if action == "add":
                    await keywords.add_keyword(session, category, term, actor_for(viewer))
                elif action == "remove":
                    await keywords.remove_keyword(session, category, term, actor_for(viewer))
                elif action == "reset":
                    await keywords.reset_keyword(session, category, term, actor_for(viewer))
                else:
                    raise DomainError("error.forbidden")
        except DomainError as exc:
            flash(request, "error", t(exc.key, **exc.params))
            return see_other("/staff/keywords")
        await runtime.reload_keywords()  # this process: at once; others poll the version
        key = "keyword_reset" if action == "reset" else "keyword_saved"
        flash(request, "ok", dash["flash"][key])
        return see_other("/staff/keywords")

    return router
