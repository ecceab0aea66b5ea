"""/staff/residents/<id>: one resident's points, corrections, redemptions and certificates.

Staff only, and only residents of their community (an admin: everyone); anyone else is a
404. A correction needs a reason (stored on the ledger transaction and in the audit log)
and carries an idempotency key drawn when the page was rendered, so pressing the button
twice posts once. Pickup codes are shown masked: they are the resident's voucher.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from community.activities.common import community_name
from community.catalog import has, t
from community.errors import DomainError, NotFound
from community.orgs import list_organizations
from community.staff import actor_for
from community.timebank import (
    adjust_points,
    cancel_redemption,
    certificate_content,
    get_certificate,
    issue_certificate,
    list_certificates,
    render_certificate_pdf,
    user_balance,
    user_history,
    user_redemptions,
)
from community.timebank.certificates import format_hours
from storage.db import transaction
from storage.models import StaffAccount, User
from web.dashboard.auth import Viewer
from web.dashboard.csrf import checked_form
from web.dashboard.render import SECURITY_HEADERS, flash, see_other
from web.dashboard.scope import (
    Id,
    as_id,
    community_scope,
    csrf_rejected,
    forbidden,
    is_staff,
    mask_name,
    not_found,
    page,
    whole_number,
)

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
FORM_FIELDS = ("amount", "reason", "issuer_org_id", "holder_name")


def _field(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def resident_for(session: AsyncSession, user_id: int, viewer: StaffAccount) -> User:
    """The resident if this staff member serves them; NotFound otherwise."""
    user = await session.get(User, user_id)
    scope = community_scope(viewer)
    if (
        user is None
        or user.deleted_at is not None
        or (scope is not None and user.community_id != scope)
    ):
        raise NotFound("timebank.user_not_found")
    return user


def _mask_code(code: str) -> str:
    return code[:2] + "*" * max(len(code) - 2, 0)


def _kind_name(kind: str) -> str:
    return t(f"timebank.kind.{kind}") if has(f"timebank.kind.{kind}") else kind


async def _context(
    session: AsyncSession, user: User, values: dict[str, str], errors: list[str]
) -> dict[str, Any]:
    history = await user_history(session, user.id, limit=30)
    redemptions = await user_redemptions(session, user.id, limit=30)
    return {
        "resident": {
            "id": user.id,
            "name": mask_name(user.display_name or f"#{user.id}"),
            "community": await community_name(session, user.community_id)
            if user.community_id
            else "-",
        },
        "balance": await user_balance(session, user.id),
        "history": [
            {
                "when": h.when,
                "amount": h.amount,
                "reason": h.reason,
                "kind": _kind_name(h.kind),
                "after": h.balance_after,
            }
            for h in history
        ],
        "redemptions": [
            {
                "id": r.id,
                "title": r.title,
                "price": r.price,
                "code": _mask_code(r.pickup_code),
                "status": r.status,
                "status_name": t(f"dacts.points.redemption.{r.status}"),
                "created_at": r.created_at,
            }
            for r in redemptions
        ],
        "certificates": [
            {
                "id": c.id,
                "number": c.number,
                "hours": format_hours(c.hours),
                "issued_at": c.issued_at,
            }
            for c in await list_certificates(session, user.id)
        ],
        "orgs": [{"id": o.id, "name": o.name} for o in await list_organizations(session)],
        "values": values,
        "errors": errors,
        "key": secrets.token_urlsafe(12),
    }


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/residents")
    async def lookup(request: Request, viewer: Viewer, user: str = "") -> Response:
        if not is_staff(viewer):
            return forbidden(request, viewer)
        number = user.strip().lstrip("#")
        if as_id(number) is None:
            flash(request, "error", t("dacts.error.resident_number"))
            return see_other("/staff/rewards")
        return see_other(f"/staff/residents/{as_id(number)}")

    @router.get("/residents/{user_id}", response_class=HTMLResponse)
    async def resident_page(request: Request, user_id: Id, viewer: Viewer) -> Response:
        if not is_staff(viewer):
            return forbidden(request, viewer)
        async with transaction(request.app.state.runtime.factory) as session:
            try:
                user = await resident_for(session, user_id, viewer)
            except NotFound:
                return not_found(request, viewer)
            context = await _context(session, user, dict.fromkeys(FORM_FIELDS, ""), [])
        return page(request, "points.html", context, viewer)

    @router.post("/residents/{user_id}/{verb}", response_class=HTMLResponse)
    async def resident_action(request: Request, user_id: Id, verb: str, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        if not is_staff(viewer):
            return forbidden(request, viewer)
        if verb not in ("adjust", "certificates"):
            return not_found(request, viewer)
        values = {name: _field(form, name, 500) for name in FORM_FIELDS}
        errors: list[str] = []
        amount = None
        if verb == "adjust":
            amount = whole_number(values["amount"], signed=True)
            if not amount:
                errors.append(t("dacts.error.amount_number"))
            if not values["reason"]:
                errors.append(t("dacts.error.reason_required"))
            key = _field(form, "key", 64)
            if not KEY_RE.match(key):
                errors.append(t("dacts.error.stale_form"))
        elif as_id(values["issuer_org_id"]) is None:
            errors.append(t("dacts.error.choose_org"))
        factory = request.app.state.runtime.factory
        try:
            async with transaction(factory) as session:
                await resident_for(session, user_id, viewer)
                if not errors and verb == "adjust":
                    await adjust_points(
                        session,
                        user_id=user_id,
                        amount=amount or 0,
                        reason=values["reason"],
                        actor=actor_for(viewer),
                        key=f"dash-adjust:{key}",
                    )
                elif not errors:
                    cert = await issue_certificate(
                        session,
                        user_id=user_id,
                        issuer_org_id=as_id(values["issuer_org_id"]) or 0,
                        actor=actor_for(viewer),
                        holder_name=values["holder_name"] or None,
                        org_only=form.get("org_only") == "1",
                    )
        except NotFound as exc:
            if exc.key == "timebank.user_not_found":
                return not_found(request, viewer)
            errors.append(t(exc.key, **exc.params))
        except DomainError as exc:  # rolled back: nothing posted
            errors.append(t(exc.key, **exc.params))
        if not errors:
            if verb == "adjust":
                flash(request, "ok", t("dacts.flash.adjusted", amount=f"{amount:+d}"))
            else:
                flash(request, "ok", t("dacts.flash.certificate", number=cert.number))
            return see_other(f"/staff/residents/{user_id}")
        async with transaction(factory) as session:
            user = await resident_for(session, user_id, viewer)
            context = await _context(session, user, values, errors)
        context["failed"] = verb
        return page(request, "points.html", context, viewer, status_code=400)

    @router.post("/residents/{user_id}/redemptions/{redemption_id}/cancel")
    async def cancel(request: Request, user_id: Id, redemption_id: Id, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        if not is_staff(viewer):
            return forbidden(request, viewer)
        back = f"/staff/residents/{user_id}"
        try:
            async with transaction(request.app.state.runtime.factory) as session:
                await resident_for(session, user_id, viewer)
                mine = {r.id for r in await user_redemptions(session, user_id, limit=200)}
                if redemption_id not in mine:
                    raise NotFound("timebank.redemption_not_found")
                await cancel_redemption(
                    session,
                    redemption_id=redemption_id,
                    actor=actor_for(viewer),
                    reason=_field(form, "reason", 500) or None,
                )
        except NotFound:
            return not_found(request, viewer)
        except DomainError as exc:
            flash(request, "error", t(exc.key, **exc.params))
            return see_other(back)
        flash(request, "ok", t("dacts.flash.redemption_cancelled"))
        return see_other(back)

    @router.get("/certificates/{certificate_id}.pdf")
    async def certificate_download(
        request: Request, certificate_id: Id, viewer: Viewer
    ) -> Response:
        if not is_staff(viewer):
            return forbidden(request, viewer)
        try:
            async with transaction(request.app.state.runtime.factory) as session:
                certificate = await get_certificate(session, certificate_id)
                scope = community_scope(viewer)
                if scope is not None and certificate.community_id != scope:
                    raise NotFound("timebank.cert_not_found")
                content = await certificate_content(session, certificate)
        except NotFound:
            return not_found(request, viewer)
        return await pdf_response(certificate.number, content)

    return router


async def pdf_response(number: str, content: dict[str, Any]) -> Response:
    """Render outside the transaction (CPU work in a thread, no database lock held)."""
    data = await asyncio.to_thread(render_certificate_pdf, content)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{number}.pdf"',
    }
    return Response(data, media_type="application/pdf", headers=headers)
