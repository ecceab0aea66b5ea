"""Audit entries: every state change writes one, inside the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog, Request, RequestEvent


@dataclass(frozen=True)
class Actor:
    """Who acted: ``kind`` is resident | org | staff | system; ``id`` a stable reference."""

    kind: str
    id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


SYSTEM = Actor("system")


def record_request_event(
    session: AsyncSession,
    request: Request,
    actor: Actor,
    action: str,
    from_status: str | None,
    note: str | None = None,
) -> RequestEvent:
    event = RequestEvent(
        request_id=request.id,
        actor_type=actor.kind,
        actor_id=actor.id,
        action=action,
        from_status=from_status,
        to_status=request.status,
        note=note,
    )
    session.add(event)
    return event


def record_audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(AuditLog(actor=actor.label, action=action, target=target, detail=detail or {}))
