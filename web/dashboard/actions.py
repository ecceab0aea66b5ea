"""The dashboard's state changes: one form post → one community action, authorized first.

Order matters: visibility is checked before the role, so a request of another
organization (or community) answers "not found" whatever the action asked.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from community import requests as actions
from community.errors import DomainError, Forbidden
from community.queues import STAFF_ROLES, load_request_for
from community.staff import actor_for
from storage.models import StaffAccount

ORG_ACTIONS = frozenset({"accept", "decline", "start", "resolve"})
STAFF_ACTIONS = frozenset({"assign", "close", "ack", "recategorize"})
ALL_ACTIONS = ORG_ACTIONS | STAFF_ACTIONS


def _text(form: FormData, name: str, limit: int = 1000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def perform(
    session: AsyncSession, viewer: StaffAccount, request_id: int, action: str, form: FormData
) -> None:
    """Run ``action`` for ``viewer``; raises NotFound, Forbidden or another DomainError."""
    await load_request_for(session, request_id, viewer)
    actor = actor_for(viewer)
    if action in ORG_ACTIONS:
        if viewer.role != "org" or viewer.org_id is None:
            raise Forbidden("error.forbidden")
        org_id = viewer.org_id
        if action == "accept":
            await actions.accept_request(session, request_id, org_id, actor)
        elif action == "decline":
            await actions.decline_request(
                session, request_id, org_id, actor, _text(form, "note") or None
            )
        elif action == "start":
            await actions.start_request(session, request_id, org_id, actor)
        else:
            await actions.resolve_request(session, request_id, org_id, actor, _text(form, "note"))
        return
    if viewer.role not in STAFF_ROLES:
        raise Forbidden("error.forbidden")
    if action == "assign":
        raw = _text(form, "org_id", 20)
        if not raw.isdigit():
            raise DomainError("dash.error.choose_org")
        await actions.assign_request(session, request_id, int(raw), actor)
    elif action == "close":
        await actions.close_request(session, request_id, _text(form, "reason", 500), actor)
    elif action == "recategorize":
        await actions.recategorize_request(session, request_id, _text(form, "category", 32), actor)
    else:
        await actions.acknowledge_emergency(session, request_id, actor)


def after_url(request_id: int, action: str) -> str:
    """Where to go next: a declined request leaves the organization's view."""
    if action == "decline":
        return "/staff"
    return f"/staff/requests/{request_id}"
