"""Read models of the dashboard, with object-level authorization built in.

Every function takes the viewing account and only ever returns what that account may see:
an organization sees its own requests (masked text, phone only after it accepted), a
community staff member sees their community, an admin sees everything. A request outside
the viewer's reach is "not found" — never "forbidden" — so ids reveal nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import lifecycle as lc
from community.catalog import has, t
from community.errors import Forbidden, NotFound
from community.routing import candidate_organizations
from nlp.extract import mask_phone, mask_pii
from nlp.taxonomy import CATEGORIES
from storage.models import (
    Community,
    Organization,
    Request,
    RequestEvent,
    StaffAccount,
    utcnow,
)

REVIEW_FILTERS: tuple[str, ...] = ("all", "low_confidence", "no_org", "emergency", "unaccepted")
ORG_FILTERS: tuple[str, ...] = ("new", "active", "done", "all")
UNACCEPTED_AFTER = timedelta(hours=24)
LIST_LIMIT = 200
STAFF_ROLES = frozenset({"admin", "staff"})


def _unacknowledged_emergency() -> ColumnElement[bool]:
    acked = exists().where(
        RequestEvent.request_id == Request.id, RequestEvent.action == "ack_emergency"
    )
    return and_(Request.emergency.is_(True), ~acked)


def _review_condition(name: str, now: datetime) -> ColumnElement[bool]:
    """Queue membership and its tabs.

    The queue is what needs a person: flagged for review, waiting for assignment, or routed
    and not accepted for a day (those are not flagged, yet staff must chase them).
    """
    overdue = and_(Request.status == lc.ROUTED, Request.routed_at < now - UNACCEPTED_AFTER)
    base = or_(Request.needs_review.is_(True), Request.status == lc.PENDING_REVIEW, overdue)
    if name == "low_confidence":
        return and_(base, Request.review_reason.in_(("low_confidence", "other")))
    if name == "no_org":
        return and_(base, Request.review_reason.in_(("no_org", "declined")))
    if name == "emergency":
        return and_(base, _unacknowledged_emergency())
    if name == "unaccepted":
        return overdue
    return base


def _staff_scope(viewer: StaffAccount) -> ColumnElement[bool] | None:
    if viewer.role not in STAFF_ROLES:
        raise Forbidden("error.forbidden")
    if viewer.role == "staff" and viewer.community_id is not None:
        return Request.community_id == viewer.community_id
    return None


def _org_condition(name: str) -> ColumnElement[bool] | None:
    return {
        "new": Request.status == lc.ROUTED,
        "active": Request.status.in_((lc.ACCEPTED, lc.IN_PROGRESS)),
        "done": Request.status == lc.RESOLVED,
    }.get(name)


async def review_queue(
    session: AsyncSession, viewer: StaffAccount, filter: str = "all", *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Rows of the staff review queue, unacknowledged emergencies first, then newest."""
    condition = _review_condition(filter if filter in REVIEW_FILTERS else "all", now or utcnow())
    scope = _staff_scope(viewer)
    stmt = select(Request).where(condition)
    if scope is not None:
        stmt = stmt.where(scope)
    urgent = case((_unacknowledged_emergency(), 0), else_=1)
    stmt = stmt.order_by(urgent, Request.created_at.desc(), Request.id.desc()).limit(LIST_LIMIT)
    return await _rows(session, list(await session.scalars(stmt)))


async def review_counts(
    session: AsyncSession, viewer: StaffAccount, *, now: datetime | None = None
) -> dict[str, int]:
    """How many requests each review tab holds (for the tab labels)."""
    now = now or utcnow()
    scope = _staff_scope(viewer)
    columns = [
        func.count(case((_review_condition(name, now), 1))).label(name) for name in REVIEW_FILTERS
    ]
    stmt = select(*columns).select_from(Request)
    if scope is not None:
        stmt = stmt.where(scope)
    row = (await session.execute(stmt)).one()
    return dict(zip(REVIEW_FILTERS, row, strict=True))


async def org_inbox(
    session: AsyncSession, org_id: int, status_filter: str = "new"
) -> list[dict[str, Any]]:
    """An organization's requests; other organizations' never appear."""
    stmt = select(Request).where(Request.org_id == org_id)
    condition = _org_condition(status_filter)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(Request.emergency.desc(), Request.created_at.desc()).limit(LIST_LIMIT)
    return await _rows(session, list(await session.scalars(stmt)))


async def org_counts(session: AsyncSession, org_id: int) -> dict[str, int]:
    """How many requests each inbox tab holds."""
    columns = []
    for name in ORG_FILTERS:
        condition = _org_condition(name)
        columns.append(func.count(Request.id if condition is None else case((condition, 1))))
    row = (await session.execute(select(*columns).where(Request.org_id == org_id))).one()
    return dict(zip(ORG_FILTERS, row, strict=True))


async def _names(session: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        (await session.execute(select(model.id, model.name).where(model.id.in_(ids)))).all()
    )


async def _rows(session: AsyncSession, requests: list[Request]) -> list[dict[str, Any]]:
    """List rows show masked text only: lists are glanced at, shared, and screenshotted."""
    communities = await _names(
        session, Community, {r.community_id for r in requests if r.community_id}
    )
    orgs = await _names(session, Organization, {r.org_id for r in requests if r.org_id})
    return [
        {
            "id": r.id,
            "number": r.number,
            "category": CATEGORIES.get(r.category, r.category),
            "status": r.status,
            "status_name": t(f"status.{r.status}"),
            "kind_name": _kind_name(r.kind),
            "community": communities.get(r.community_id or 0, "-"),
            "org": orgs.get(r.org_id or 0),
            "emergency": r.emergency,
            "review_reason": _reason_name(r.review_reason),
            "confidence": round(r.confidence * 100),
            "excerpt": _excerpt(mask_pii(r.text)),
            "created_at": r.created_at,
            "routed_at": r.routed_at,
        }
        for r in requests
    ]


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _text_or(key: str, fallback: str) -> str:
    """Catalog text, or the raw code when older data holds a value the catalog lacks."""
    return t(key) if has(key) else fallback


def _kind_name(kind: str) -> str:
    return _text_or(f"kind.{kind}", kind)


def _reason_name(reason: str | None) -> str | None:
    return None if reason is None else _text_or(f"review_reason.{reason}", reason)


def ensure_visible(request: Request | None, viewer: StaffAccount) -> Request:
    """The request if the viewer may see it; NotFound otherwise (never a leak)."""
    if request is None:
        raise NotFound("error.not_found")
    if viewer.role == "org":
        if viewer.org_id is None or request.org_id != viewer.org_id:
            raise NotFound("error.not_found")
    elif viewer.role == "staff":
        if viewer.community_id is not None and request.community_id != viewer.community_id:
            raise NotFound("error.not_found")
    elif viewer.role != "admin":
        raise NotFound("error.not_found")
    return request


async def load_request_for(session: AsyncSession, request_id: int, viewer: StaffAccount) -> Request:
    return ensure_visible(await session.get(Request, request_id), viewer)


async def request_view(
    session: AsyncSession, request: Request, viewer: StaffAccount
) -> dict[str, Any]:
    """Everything the detail page shows, already masked for this viewer."""
    ensure_visible(request, viewer)
    is_org = viewer.role == "org"
    (row,) = await _rows(session, [request])
    if is_org:
        text = mask_pii(request.text)
        phone = request.contact_phone if request.accepted_at is not None else None
        phone_hidden = request.contact_phone is not None and phone is None
    else:
        text = request.text
        phone = mask_phone(request.contact_phone) if request.contact_phone else None
        phone_hidden = False
    events = list(
        await session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request.id)
            .order_by(RequestEvent.created_at, RequestEvent.id)
        )
    )
    acknowledged = any(e.action == "ack_emergency" for e in events)
    return {
        **row,
        "text": text,
        "phone": phone,
        "phone_hidden": phone_hidden,
        "kind": request.kind,
        "updated_at": request.updated_at,
        "accepted_at": request.accepted_at,
        "resolved_at": request.resolved_at,
        "result_note": request.result_note,
        "close_reason": request.close_reason,
        "rating": request.rating,
        "rating_comment": None if is_org else request.rating_comment,
        "needs_review": request.needs_review,
        "events": [_event_view(e, is_org) for e in events],
        "can": {a: lc.can(a, request.status) for a in ("accept", "start", "resolve", "close")},
        "can_decline": lc.can("decline", request.status),
        "can_assign": lc.can("assign", request.status),
        "can_ack": request.emergency and not acknowledged,
    }


def _event_view(event: RequestEvent, for_org: bool) -> dict[str, Any]:
    note = event.note
    if note and event.action == "review":  # the note is a reason code: say it in words
        note = _text_or(f"review_reason.{note}", note)
    elif note and for_org:
        note = mask_pii(note)
    return {
        "at": event.created_at,
        "actor": _text_or(f"dash.actor.{event.actor_type}", event.actor_type),
        "actor_id": None if for_org else event.actor_id,
        "action": _text_or(f"dash.event.{event.action}", event.action),
        "to_status": t(f"status.{event.to_status}") if event.to_status else None,
        "note": note,
    }


async def org_choices(session: AsyncSession, request: Request) -> list[dict[str, Any]]:
    """Active organizations for the assign form: those serving the request first."""
    serving = await candidate_organizations(session, request.category, request.community_id)
    first = {o.id for o in serving}
    others = await session.scalars(
        select(Organization)
        .where(Organization.active.is_(True), Organization.id.not_in(first or {0}))
        .order_by(Organization.name)
    )
    return [{"id": o.id, "name": o.name, "serving": True} for o in serving] + [
        {"id": o.id, "name": o.name, "serving": False} for o in others
    ]


async def organization_name(session: AsyncSession, org_id: int) -> str:
    name = await session.scalar(select(Organization.name).where(Organization.id == org_id))
    return name or "-"
