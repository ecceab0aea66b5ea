"""/staff/rewards: the reward catalog (积分兑换) and handing a reward over by pickup code.

Staff manage the catalog (create, change price or stock, take off the shelf) for their
community (an admin: everywhere). Fulfilling a pickup code (核销) is open to staff and to
the providing organization's members: community.timebank decides who may hand over what.
A resident's own points, adjustments and certificates are in web.dashboard.points.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from community.catalog import t
from community.errors import DomainError, NotFound
from community.orgs import list_organizations
from community.residents import list_communities
from community.staff import actor_for
from community.timebank import create_reward, fulfil_redemption, list_rewards, update_reward
from storage.db import transaction
from storage.models import StaffAccount
from web.dashboard import points
from web.dashboard.auth import Viewer
from web.dashboard.csrf import checked_form
from web.dashboard.render import flash, see_other
from web.dashboard.scope import (
    Id,
    as_id,
    community_scope,
    csrf_rejected,
    forbidden,
    is_org,
    is_staff,
    not_found,
    page,
    whole_number,
)

REWARD_FIELDS = (
    "title",
    "description",
    "kind",
    "price",
    "stock",
    "provider_org_id",
    "community_id",
)
BACK = "/staff/rewards"


def _field(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _visible_rewards(session: AsyncSession, viewer: StaffAccount) -> list[Any]:
    """Active rewards (empty ones included) of the viewer's community and the shared ones."""
    return await list_rewards(session, community_id=community_scope(viewer), include_empty=True)


async def _page_context(
    session: AsyncSession, viewer: StaffAccount, values: dict[str, str], errors: list[str]
) -> dict[str, Any]:
    if not is_staff(viewer):
        return {"rewards": [], "orgs": [], "communities": [], "values": values, "errors": errors}
    communities = [] if community_scope(viewer) else await list_communities(session)
    return {
        "rewards": await _visible_rewards(session, viewer),
        "orgs": [{"id": o.id, "name": o.name} for o in await list_organizations(session)],
        "communities": [{"id": c.id, "name": c.name} for c in communities],
        "values": values,
        "errors": errors,
    }


def build_router() -> APIRouter:
    router = APIRouter(prefix="/staff")

    @router.get("/rewards", response_class=HTMLResponse)
    async def rewards_page(request: Request, viewer: Viewer) -> Response:
        if not (is_staff(viewer) or is_org(viewer)):
            return forbidden(request, viewer)
        values = dict.fromkeys(REWARD_FIELDS, "") | {"kind": "item"}
        async with transaction(request.app.state.runtime.factory) as session:
            context = await _page_context(session, viewer, values, [])
        return page(request, "rewards.html", {**context, "is_staff": is_staff(viewer)}, viewer)

    # Declared before /rewards/{reward_id}: "fulfil" is not an id.
    @router.post("/rewards/fulfil")
    async def fulfil(request: Request, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        if not (is_staff(viewer) or is_org(viewer)):
            return forbidden(request, viewer)
        code = _field(form, "pickup_code", 32)
        if not code:
            flash(request, "error", t("dacts.error.pickup_required"))
            return see_other(BACK)
        try:
            async with transaction(request.app.state.runtime.factory) as session:
                done = await fulfil_redemption(session, pickup_code=code, actor=actor_for(viewer))
        except DomainError as exc:
            flash(request, "error", t(exc.key, **exc.params))
            return see_other(BACK)
        flash(request, "ok", t("dacts.flash.fulfilled", code=done.pickup_code))
        return see_other(BACK)

    @router.post("/rewards", response_class=HTMLResponse)
    async def create(request: Request, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        if not is_staff(viewer):
            return forbidden(request, viewer)
        values = {
            name: _field(form, name, 1000 if name == "description" else 64)
            for name in REWARD_FIELDS
        }
        errors = []
        price, stock = whole_number(values["price"]), whole_number(values["stock"])
        if price is None:
            errors.append(t("dacts.error.price_number"))
        if stock is None:
            errors.append(t("dacts.error.stock_number"))
        provider = as_id(values["provider_org_id"])
        community = community_scope(viewer)
        if community is None:
            community = as_id(values["community_id"])
        factory = request.app.state.runtime.factory
        if not errors:
            try:
                async with transaction(factory) as session:
                    await create_reward(
                        session,
                        title=values["title"],
                        description=values["description"],
                        kind=values["kind"] or "item",
                        price=price or 0,
                        stock=stock or 0,
                        provider_org_id=provider,
                        community_id=community,
                        actor=actor_for(viewer),
                    )
            except DomainError as exc:
                errors.append(t(exc.key, **exc.params))
            else:
                flash(request, "ok", t("dacts.flash.reward_created", title=values["title"]))
                return see_other(BACK)
        async with transaction(factory) as session:
            context = await _page_context(session, viewer, values, errors)
        context["is_staff"] = True
        return page(request, "rewards.html", context, viewer, status_code=400)

    @router.post("/rewards/{reward_id}")
    async def update(request: Request, reward_id: Id, viewer: Viewer) -> Response:
        return await _update(request, viewer, reward_id, deactivate=False)

    @router.post("/rewards/{reward_id}/deactivate")
    async def deactivate(request: Request, reward_id: Id, viewer: Viewer) -> Response:
        return await _update(request, viewer, reward_id, deactivate=True)

    router.include_router(points.build_router())
    return router


async def _update(
    request: Request, viewer: StaffAccount, reward_id: int, *, deactivate: bool
) -> Response:
    """Change price/stock, or take the reward off the shelf; pickup codes stay valid."""
    form = await checked_form(request)
    if form is None:
        return csrf_rejected(request, viewer)
    if not is_staff(viewer):
        return forbidden(request, viewer)
    changes: dict[str, Any] = {"active": False} if deactivate else {}
    if not deactivate:
        price = whole_number(_field(form, "price", 16))
        stock = whole_number(_field(form, "stock", 16))
        if price is None or stock is None:
            flash(request, "error", t("dacts.error.price_stock_number"))
            return see_other(BACK)
        changes = {"price": price, "stock": stock}
    try:
        async with transaction(request.app.state.runtime.factory) as session:
            if reward_id not in {r.id for r in await _visible_rewards(session, viewer)}:
                raise NotFound("timebank.reward_not_found")
            reward = await update_reward(session, reward_id, actor=actor_for(viewer), **changes)
    except NotFound:
        return not_found(request, viewer)
    except DomainError as exc:
        flash(request, "error", t(exc.key, **exc.params))
        return see_other(BACK)
    key = "reward_deactivated" if deactivate else "reward_updated"
    flash(request, "ok", t(f"dacts.flash.{key}", title=reward.title))
    return see_other(BACK)
