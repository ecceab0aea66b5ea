"""Request actions: submit, route, accept, decline, start, resolve, cancel, rate, assign, close.

Each action runs inside the caller's transaction, checks the state machine, writes one
audit event and queues the notices that the change implies. Callers own the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community import lifecycle as lc
from community.audit import SYSTEM, Actor, record_request_event
from community.catalog import t
from community.errors import DomainError, Forbidden, NotFound
from community.notify import Button, Reply, notify_target_spec, notify_user, parse_notify
from community.numbering import next_request_number
from community.routing import choose_organization
from nlp.extract import mask_pii
from nlp.taxonomy import CATEGORIES
from storage.models import Community, Organization, Request, utcnow


@dataclass(frozen=True)
class Intake:
    """What intake knows about a new request (from the dialog or a staff entry form)."""

    text: str
    kind: str
    category: str
    predicted_category: str
    confidence: float
    matched: tuple[str, ...] = ()
    emergency: bool = False
    emergency_numbers: tuple[str, ...] = ()
    category_chosen_by_person: bool = False
    contact_phone: str | None = None
    source_channel: str = "web"
    extra: dict[str, str] = field(default_factory=dict)


def category_name(category: str) -> str:
    return CATEGORIES.get(category, category)


def org_buttons_new(request: Request) -> tuple[Button, ...]:
    return (
        Button(t("notice.org_accept"), f"oa.{request.id}"),
        Button(t("notice.org_decline"), f"od.{request.id}"),
    )


def org_buttons_accepted(request: Request) -> tuple[Button, ...]:
    return (
        Button(t("notice.org_start"), f"op.{request.id}"),
        Button(t("notice.org_resolve"), f"or.{request.id}"),
    )


def rating_buttons(request: Request) -> tuple[Button, ...]:
    return tuple(
        Button(t("rating.label", stars="★" * n, words=t(f"rating.{n}")), f"rt.{request.id}.{n}")
        for n in range(5, 0, -1)
    )


async def _community_name(session: AsyncSession, community_id: int | None) -> str:
    if community_id is None:
        return "-"
    name = await session.scalar(select(Community.name).where(Community.id == community_id))
    return name or "-"


async def submit_request(
    session: AsyncSession,
    *,
    user_id: int | None,
    community_id: int | None,
    intake: Intake,
    review_threshold: float,
    actor: Actor,
    number_prefix: str = "R",
    now: datetime | None = None,
    notify_resident: bool = False,
) -> Request:
    """Record a request and route it (or queue it for staff review).

    In a conversation the dialog itself tells the resident where the request went, so the
    resident is notified only for requests entered on their behalf (``notify_resident``).
    """
    now = now or utcnow()
    request = Request(
        number=await next_request_number(session, now, number_prefix),
        user_id=user_id,
        community_id=community_id,
        kind=intake.kind,
        text=intake.text,
        category=intake.category,
        predicted_category=intake.predicted_category,
        confidence=intake.confidence,
        matched=list(intake.matched),
        emergency=intake.emergency,
        status=lc.PENDING_REVIEW,
        contact_phone=intake.contact_phone,
        source_channel=intake.source_channel,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    await session.flush()
    record_request_event(session, request, actor, "submit", None)

    if intake.emergency:
        request.needs_review = True
        request.review_reason = "emergency"
        await _alert_duty(session, request, intake.emergency_numbers)

    confident = intake.category_chosen_by_person or intake.confidence >= review_threshold
    if intake.category == "other" or not confident:
        reason = "other" if intake.category == "other" else "low_confidence"
        await send_to_review(session, request, reason, SYSTEM, notify_resident=notify_resident)
    else:
        await route_request(session, request, SYSTEM, notify_resident=notify_resident)
    return request


async def _alert_duty(session: AsyncSession, request: Request, numbers: tuple[str, ...]) -> None:
    community = await session.get(Community, request.community_id) if request.community_id else None
    reply = Reply(
        t(
            "notice.duty_emergency",
            community=community.name if community else "-",
            number=request.number,
            text=mask_pii(request.text),
            numbers="/".join(numbers) or "110",
        )
    )
    await notify_target_spec(
        session,
        community.duty_notify if community else None,
        reply,
        dedupe_key=f"duty:{request.id}",
    )


async def send_to_review(
    session: AsyncSession,
    request: Request,
    reason: str,
    actor: Actor,
    note: str | None = None,
    *,
    notify_resident: bool = True,
) -> None:
    before = request.status
    request.status = lc.next_status("review", before)
    request.org_id = None
    request.needs_review = True
    request.review_reason = reason
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "review", before, note or reason)
    if notify_resident and request.user_id is not None and reason != "declined":
        await notify_user(
            session,
            request.user_id,
            Reply(t("notice.resident_review", number=request.number)),
            prefer_channel=request.source_channel,
            dedupe_key=f"req:{request.id}:review",
        )


async def route_request(
    session: AsyncSession, request: Request, actor: Actor, *, notify_resident: bool = True
) -> bool:
    """Route to the best eligible organization; False (and review) when there is none."""
    org = await choose_organization(
        session, request.category, request.community_id, exclude=request.declined_by or []
    )
    if org is None:
        reason = "declined" if request.declined_by else "no_org"
        await send_to_review(session, request, reason, actor, notify_resident=notify_resident)
        return False
    await _assign(session, request, org, actor, "route")
    if notify_resident and request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(t("notice.resident_routed", number=request.number, org=org.name)),
            prefer_channel=request.source_channel,
        )
    return True


async def _assign(
    session: AsyncSession, request: Request, org: Organization, actor: Actor, action: str
) -> None:
    before = request.status
    request.status = lc.next_status(action, before)
    request.org_id = org.id
    request.accepted_at = None
    request.routed_at = utcnow()
    request.updated_at = request.routed_at
    if request.review_reason != "emergency":
        request.needs_review = False
    record_request_event(session, request, actor, action, before, org.name)
    await _notify_org_new(session, request, org)


async def _notify_org_new(session: AsyncSession, request: Request, org: Organization) -> None:
    if parse_notify(org.notify) is None:
        return  # dashboard inbox only: nothing to send
    reply = Reply(
        t(
            "notice.org_new",
            number=request.number,
            category=category_name(request.category),
            community=await _community_name(session, request.community_id),
            kind=t(f"kind.{request.kind}"),
            text=mask_pii(request.text),
            phone=t("notice.org_phone_hidden")
            if request.contact_phone
            else t("notice.org_phone_none"),
        ),
        org_buttons_new(request),
    )
    # routed_at makes the key unique per assignment, so a re-route notifies again.
    await notify_target_spec(
        session, org.notify, reply, dedupe_key=f"org:{request.id}:{org.id}:{request.routed_at}"
    )


async def get_request(session: AsyncSession, request_id: int) -> Request:
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None:
        raise NotFound("error.not_found")
    return request


async def get_org_request(session: AsyncSession, request_id: int, org_id: int) -> Request:
    """A request as seen by one organization: another organization's is 'not found'."""
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None or request.org_id != org_id:
        raise NotFound("error.not_found")
    return request


def accepted_reply(request: Request) -> Reply:
    """What the organization sees once it accepted: full text and phone, next actions."""
    return Reply(
        t(
            "notice.org_accepted",
            number=request.number,
            text=request.text,
            phone=request.contact_phone or t("notice.org_phone_none"),
        ),
        org_buttons_accepted(request),
    )


async def accept_request(
    session: AsyncSession, request_id: int, org_id: int, actor: Actor, *, notify_org: bool = True
) -> Request:
    """Accept a routed request. ``notify_org`` is False when the answer goes back in chat."""
    request = await get_org_request(session, request_id, org_id)
    before = request.status
    request.status = lc.next_status("accept", before)
    request.accepted_at = request.updated_at = utcnow()
    record_request_event(session, request, actor, "accept", before)
    org = await session.get(Organization, org_id)
    assert org is not None
    if notify_org:
        await notify_target_spec(
            session, org.notify, accepted_reply(request), dedupe_key=f"org:{request.id}:accepted"
        )
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(t("notice.resident_accepted", number=request.number, org=org.name)),
            prefer_channel=request.source_channel,
            dedupe_key=f"req:{request.id}:accepted",
        )
    return request


async def decline_request(
    session: AsyncSession,
    request_id: int,
    org_id: int,
    actor: Actor,
    note: str | None = None,
    *,
    notify_org: bool = True,
) -> Request:
    request = await get_org_request(session, request_id, org_id)
    before = request.status
    lc.next_status("decline", before)  # validates
    request.declined_by = [*(request.declined_by or []), org_id]
    record_request_event(session, request, actor, "decline", before, note)
    org = await session.get(Organization, org_id)
    if org is not None and notify_org:
        await notify_target_spec(
            session, org.notify, Reply(t("notice.org_declined", number=request.number))
        )
    await route_request(session, request, SYSTEM)
    return request


async def start_request(
    session: AsyncSession, request_id: int, org_id: int, actor: Actor
) -> Request:
    request = await get_org_request(session, request_id, org_id)
    before = request.status
    request.status = lc.next_status("start", before)
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "start", before)
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(t("notice.resident_in_progress", number=request.number)),
            prefer_channel=request.source_channel,
            dedupe_key=f"req:{request.id}:in_progress",
        )
    return request


async def resolve_request(
    session: AsyncSession, request_id: int, org_id: int, actor: Actor, note: str
) -> Request:
    note = (note or "").strip()
    if not note:
        raise DomainError("error.note_required")
    request = await get_org_request(session, request_id, org_id)
    before = request.status
    request.status = lc.next_status("resolve", before)
    request.result_note = note[:1000]
    request.resolved_at = request.updated_at = utcnow()
    request.needs_review = False
    record_request_event(session, request, actor, "resolve", before, request.result_note)
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(
                t("notice.resident_resolved", number=request.number, note=request.result_note),
                rating_buttons(request),
            ),
            prefer_channel=request.source_channel,
            dedupe_key=f"req:{request.id}:resolved",
        )
    return request


async def cancel_request(
    session: AsyncSession, request_id: int, user_id: int, actor: Actor
) -> Request:
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None or request.user_id != user_id:
        raise NotFound("error.not_found")
    before = request.status
    request.status = lc.next_status("cancel", before)
    request.needs_review = False
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "cancel", before)
    if request.org_id is not None:
        org = await session.get(Organization, request.org_id)
        if org is not None:
            await notify_target_spec(
                session, org.notify, Reply(t("notice.org_cancelled", number=request.number))
            )
    return request


async def rate_request(
    session: AsyncSession,
    request_id: int,
    user_id: int,
    stars: int,
    actor: Actor,
    comment: str | None = None,
) -> Request:
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None or request.user_id != user_id:
        raise NotFound("error.not_found")
    if request.status != lc.RESOLVED:
        raise DomainError("error.not_resolved")
    if not 1 <= stars <= 5:
        raise DomainError("error.bad_rating")
    if request.rating is not None:
        raise DomainError("error.already_rated")
    request.rating = stars
    request.rating_comment = (comment or "").strip()[:500] or None
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "rate", request.status, str(stars))
    return request


async def comment_rating(
    session: AsyncSession, request_id: int, user_id: int, comment: str, actor: Actor
) -> Request:
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None or request.user_id != user_id or request.rating is None:
        raise NotFound("error.not_found")
    request.rating_comment = comment.strip()[:500] or None
    record_request_event(session, request, actor, "rate_comment", request.status)
    return request


async def assign_request(
    session: AsyncSession, request_id: int, org_id: int, actor: Actor
) -> Request:
    """Staff (re)assign a request to a chosen organization."""
    if actor.kind not in {"staff", "admin"}:
        raise Forbidden("error.forbidden")
    request = await get_request(session, request_id)
    org = await session.get(Organization, org_id)
    if org is None or not org.active:
        raise DomainError("error.org_inactive")
    previous = await session.get(Organization, request.org_id) if request.org_id else None
    await _assign(session, request, org, actor, "assign")
    request.needs_review = False
    if previous is not None and previous.id != org.id:
        await notify_target_spec(
            session, previous.notify, Reply(t("notice.org_reassigned", number=request.number))
        )
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(t("notice.resident_reassigned", number=request.number, org=org.name)),
            prefer_channel=request.source_channel,
        )
    return request


async def close_request(
    session: AsyncSession, request_id: int, reason: str, actor: Actor
) -> Request:
    if actor.kind not in {"staff", "admin"}:
        raise Forbidden("error.forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("error.reason_required")
    request = await get_request(session, request_id)
    before = request.status
    request.status = lc.next_status("close", before)
    request.close_reason = reason[:500]
    request.needs_review = False
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "close", before, reason)
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(t("notice.resident_closed", number=request.number, reason=request.close_reason)),
            prefer_channel=request.source_channel,
            dedupe_key=f"req:{request.id}:closed",
        )
    return request


async def acknowledge_emergency(session: AsyncSession, request_id: int, actor: Actor) -> Request:
    """Staff saw the emergency: it leaves the review queue (the request itself goes on)."""
    request = await get_request(session, request_id)
    request.needs_review = request.status == lc.PENDING_REVIEW
    if request.review_reason == "emergency":
        request.review_reason = None if request.status != lc.PENDING_REVIEW else "no_org"
    record_request_event(session, request, actor, "ack_emergency", request.status)
    return request


async def recategorize_request(
    session: AsyncSession, request_id: int, category: str, actor: Actor
) -> Request:
    """Staff move a request to another category; recorded, so the classifier can learn."""
    if actor.kind not in {"staff", "admin"}:
        raise Forbidden("error.forbidden")
    if category not in CATEGORIES:
        raise DomainError("keywords.bad_category", category=category)
    request = await get_request(session, request_id)
    if request.category == category:
        return request
    before = request.category
    request.category = category
    request.updated_at = utcnow()
    record_request_event(
        session, request, actor, "recategorize", request.status, f"{before}->{category}"
    )
    return request


async def corrected_requests(session: AsyncSession) -> list[dict[str, object]]:
    """Requests whose category staff corrected: (text, final category) for evaluation."""
    from storage.models import RequestEvent

    ids = select(RequestEvent.request_id).where(RequestEvent.action == "recategorize")
    rows = await session.scalars(select(Request).where(Request.id.in_(ids)).order_by(Request.id))
    return [
        {
            "id": r.number,
            "text": r.text,
            "category": r.category,
            "also": [],
            "kind": r.kind,
            "emergency": r.emergency,
            "predicted": r.predicted_category,
        }
        for r in rows
    ]


async def attach_phone(
    session: AsyncSession, request_id: int, user_id: int, phone: str, actor: Actor
) -> bool:
    """Add the phone a resident gave after submitting; audited (the number itself is not)."""
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None or request.user_id != user_id or request.contact_phone is not None:
        return False
    request.contact_phone = phone
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "add_phone", request.status)
    return True
