"""/staff/broadcasts: how far each broadcast has gone (sent / waiting / failed), as bars.

A bar is an inline SVG (rect widths are attributes, not styles, so the dashboard's strict
Content-Security-Policy needs no 'unsafe-inline'); the numbers stay beside it as text for
screen readers and for anyone who prefers to read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community.broadcasts import (
    BroadcastProgress,
    broadcast_progress,
    cancel_broadcast,
    list_broadcasts,
)
from community.catalog import has, t
from community.errors import DomainError, NotFound
from community.staff import actor_for
from storage.db import transaction
from storage.models import Broadcast
from web.dashboard.auth import Viewer
from web.dashboard.csrf import checked_form
from web.dashboard.render import flash, see_other
from web.dashboard.scope import (
    Id,
    csrf_rejected,
    forbidden,
    is_staff,
    not_found,
    page,
    sees_community,
)

LIST_LIMIT = 50
EXCERPT = 40
# Segment order of a bar, each with its CSS class (colour) in activities.css.
SEGMENTS = ("sent", "pending", "failed", "gone", "cancelled")


def bar(progress: BroadcastProgress) -> dict[str, Any]:
    """Counts and SVG segments (x and width in percent of the bar) of one broadcast."""
    counts = {
        "sent": progress.sent,
        "pending": progress.pending,
        "failed": progress.failed,
        "gone": progress.gone,
        "cancelled": progress.cancelled,
    }
    total = max(sum(counts.values()), progress.total)
    segments, x = [], 0.0
    for name in SEGMENTS:
        if counts[name] and total:
            width = 100.0 * counts[name] / total
            segments.append({"name": name, "x": round(x, 3), "width": round(width, 3)})
            x += width
    status_key = f"dacts.broadcasts.status.{progress.status}"
    return {
        "id": progress.broadcast_id,
        "status": progress.status,
        "status_name": t(status_key) if has(status_key) else progress.status,
        "total": total,
        "counts": counts,
        "segments": segments,
        "done_percent": round(100 * progress.sent / total) if total else 0,
    }


async def activity_bars(session: AsyncSession, activity_id: int) -> list[dict[str, Any]]:
    """The progress of every broadcast about one activity (its announcement, for now).

    A read the domain does not offer yet (broadcasts by activity); see the report.
    """
    ids = await session.scalars(
        select(Broadcast.id).where(Broadcast.activity_id == activity_id).order_by(Broadcast.id)
    )
    return [bar(await broadcast_progress(session, bid)) for bid in list(ids)]


def _excerpt(text: str) -> str:
    first = text.split("\n", 1)[0]
    return first if len(first) <= EXCERPT else first[:EXCERPT] + "…"


def build_router() -> APIRouter:
    router = APIRouter(prefix="/staff")

    @router.get("/broadcasts", response_class=HTMLResponse)
    async def broadcasts_page(request: Request, viewer: Viewer) -> Response:
        if not is_staff(viewer):
            return forbidden(request, viewer)
        async with transaction(request.app.state.runtime.factory) as session:
            rows = []
            for broadcast in await list_broadcasts(session, limit=LIST_LIMIT * 4):
                if not sees_community(viewer, broadcast.community_id):
                    continue
                progress = await broadcast_progress(session, broadcast.id)
                rows.append(
                    {
                        **bar(progress),
                        "kind": t(f"dacts.broadcasts.kind.{broadcast.kind}")
                        if has(f"dacts.broadcasts.kind.{broadcast.kind}")
                        else broadcast.kind,
                        "excerpt": _excerpt(broadcast.text),
                        "activity_id": broadcast.activity_id,
                        "created_at": broadcast.created_at,
                        "can_cancel": broadcast.status in ("planning", "sending"),
                    }
                )
                if len(rows) >= LIST_LIMIT:
                    break
        return page(request, "broadcasts.html", {"rows": rows}, viewer)

    @router.post("/broadcasts/{broadcast_id}/cancel")
    async def cancel(request: Request, broadcast_id: Id, viewer: Viewer) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_rejected(request, viewer)
        if not is_staff(viewer):
            return forbidden(request, viewer)
        try:
            async with transaction(request.app.state.runtime.factory) as session:
                broadcast = await session.get(Broadcast, broadcast_id)
                if broadcast is None or not sees_community(viewer, broadcast.community_id):
                    raise NotFound("broadcast.error.not_found", id=broadcast_id)
                await cancel_broadcast(session, broadcast_id, actor_for(viewer).label)
        except NotFound:
            return not_found(request, viewer)
        except DomainError as exc:
            flash(request, "error", t(exc.key, **exc.params))
            return see_other("/staff/broadcasts")
        flash(request, "ok", t("dacts.flash.broadcast_cancelled"))
        return see_other("/staff/broadcasts")

    return router
