"""Shared pieces of the activity, time-bank and broadcast pages: who may see what, texts.

Visibility follows community.queues: an organization member sees its own organization's
activities, a community staff member those of their community, an admin everything. Out of
reach is "not found" (404), never "forbidden", so ids reveal nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from community.activities.common import load_activity
from community.catalog import section
from community.errors import NotFound
from community.queues import STAFF_ROLES
from nlp.extract import mask_pii
from storage.models import Activity, Community, Organization, OrgCommunity, StaffAccount
from web.dashboard.render import error_page, render, texts


@cache
def dacts() -> dict[str, Any]:
    """The ``dacts`` catalog section nested, so templates write ``a.form.title``."""
    nested: dict[str, Any] = {}
    for key, value in section("dacts").items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    viewer: StaffAccount,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render one of our dashboard templates with our texts beside the dashboard's."""
    return render(request, name, {"a": dacts(), **context}, viewer=viewer, status_code=status_code)


def not_found(request: Request, viewer: StaffAccount | None) -> HTMLResponse:
    dash = texts()
    return error_page(request, 404, dash["error"]["not_found_title"], dacts()["not_found"], viewer)


def forbidden(request: Request, viewer: StaffAccount | None) -> HTMLResponse:
    dash = texts()
    return error_page(request, 403, dash["error"]["forbidden"], dash["error"]["forbidden"], viewer)


def csrf_rejected(request: Request, viewer: StaffAccount | None) -> HTMLResponse:
    dash = texts()
    return error_page(request, 403, dash["error"]["csrf_title"], dash["error"]["csrf"], viewer)


def is_staff(viewer: StaffAccount) -> bool:
    return viewer.role in STAFF_ROLES


def is_org(viewer: StaffAccount) -> bool:
    return viewer.role == "org" and viewer.org_id is not None


def community_scope(viewer: StaffAccount) -> int | None:
    """The one community a staff member works in (None: all of them, i.e. an admin)."""
    return viewer.community_id if viewer.role == "staff" else None


def sees_community(viewer: StaffAccount, community_id: int | None) -> bool:
    if not is_staff(viewer):
        return False
    scope = community_scope(viewer)
    return scope is None or scope == community_id


def owner_org(viewer: StaffAccount) -> int | None:
    """What the domain's ``org_id`` parameter gets: the member's organization, or None for
    staff (whose reach was checked here, before the call)."""
    return viewer.org_id if viewer.role == "org" else None


def may_see_activity(viewer: StaffAccount, activity: Activity) -> bool:
    if viewer.role == "org":
        return viewer.org_id is not None and activity.org_id == viewer.org_id
    return sees_community(viewer, activity.community_id)


async def activity_for(session: AsyncSession, activity_id: int, viewer: StaffAccount) -> Activity:
    """The activity if the viewer may manage it; NotFound otherwise (never a leak)."""
    activity = await load_activity(session, activity_id)
    if not may_see_activity(viewer, activity):
        raise NotFound("activities.error.not_found")
    return activity


async def form_communities(session: AsyncSession, viewer: StaffAccount) -> list[Community]:
    """Communities the viewer may create an activity in (an organization: those it serves).

    A read the domain does not offer yet (see the report: it belongs beside
    community.orgs); validate_draft still decides, this only keeps the choice honest.
    """
    stmt = select(Community).order_by(Community.id)
    if viewer.role == "org":
        serves_all = select(Organization.id).where(
            Organization.id == viewer.org_id, Organization.all_communities.is_(True)
        )
        served = select(OrgCommunity.community_id).where(OrgCommunity.org_id == viewer.org_id)
        stmt = stmt.where(or_(serves_all.exists(), Community.id.in_(served)))
    elif community_scope(viewer) is not None:
        stmt = stmt.where(Community.id == community_scope(viewer))
    return list(await session.scalars(stmt))


def mask_name(name: str | None) -> str:
    """张三丰 → 张*丰, 李四 → 李*: enough to tell sign-ups apart, not to identify them."""
    text = mask_pii((name or "").strip())
    if not text or text.startswith("#"):
        return text or "-"
    if len(text) <= 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def public_base(request: Request) -> str:
    """Where residents' phones reach us: the configured public URL, else this request's host."""
    configured = request.app.state.runtime.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def whole_number(raw: str, *, signed: bool = False) -> int | None:
    """「12」, 「＋5」, 「-3」 → int; anything else → None (the caller says why)."""
    text = raw.strip().replace("＋", "+").replace("－", "-")
    sign = 1
    if signed and text[:1] in ("+", "-"):
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    return sign * int(text) if text.isdecimal() and len(text) <= 9 else None


MAX_ID = 2_147_483_647  # PostgreSQL integer: a larger id would be a database error, not a 404
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def as_id(raw: str) -> int | None:
    """A posted id (a <select> value) → int, or None when it is not one."""
    number = whole_number(raw)
    return number if number is not None and 1 <= number <= MAX_ID else None
