"""The 微心愿 wish wall: claim, fulfil with proof, confirm (圆梦), and release what ran out.

A wish is on the wall while it is routed and nobody holds it. Volunteers (residents) and
organizations claim it, alone or jointly (up to ``MAX_CLAIMERS``); a claim holds for
``CLAIM_DAYS`` and is released back to the wall when it runs out, with a reminder a day
before. Fulfilling resolves the wish and asks the resident to confirm; the confirmation
credits each volunteer's share of ``WISH_POINTS`` once (idempotency key per claim).
Organizations earn no points: serving wishes is part of their service contract.

The wall shows wishes masked (no phone, no address, no name); a volunteer never sees the
resident's phone, an organization sees it once it has claimed, as with any request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from community import lifecycle as lc
from community.audit import Actor, record_request_event
from community.catalog import t
from community.errors import DomainError, NotFound
from community.notify import Button, Reply, notify_target_spec, notify_user
from community.requests import category_name, rating_buttons
from community.timebank import earn_points, lock_accounts, pool_account, user_account
from nlp.extract import mask_pii
from storage.models import Community, Organization, Request, WishClaim, utcnow

CLAIM_DAYS = 7
REMIND_BEFORE = timedelta(days=1)
REOPEN_DAYS = 3
MAX_CLAIMERS = 3
WISH_POINTS = 10
WALL_TEXT_CHARS = 60
_SHANGHAI = ZoneInfo("Asia/Shanghai")

# Button payloads the dialog engine understands in any state.
WALL = "wl"
CLAIM = "wk"  # wk.<request_id>
FULFIL = "wf"  # wf.<request_id>
CONFIRM = "wc"  # wc.<request_id>
NOT_YET = "wn"  # wn.<request_id>
WITHDRAW = "ww"  # ww.<request_id>


@dataclass(frozen=True)
class Claimer:
    """A volunteer resident or an organization; exactly one of the two ids is set."""

    user_id: int | None = None
    org_id: int | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.org_id is None):
            raise ValueError("a claimer is either a resident or an organization")

    def owns(self, claim: WishClaim) -> bool:
        if self.user_id is not None:
            return claim.claimer_user_id == self.user_id
        return claim.claimer_org_id == self.org_id


@dataclass(frozen=True)
class WallItem:
    request_id: int
    number: str
    category: str
    category_name: str
    community: str
    text: str  # masked and shortened
    created_at: datetime


def _wall_text(text: str) -> str:
    masked = mask_pii(text)
    return masked if len(masked) <= WALL_TEXT_CHARS else masked[: WALL_TEXT_CHARS - 1] + "…"


async def list_wall(
    session: AsyncSession,
    *,
    community_id: int | None = None,
    category: str | None = None,
    request_id: int | None = None,
    limit: int = 8,
    offset: int = 0,
) -> list[WallItem]:
    """Open wishes, oldest first (they have waited longest), masked for the public wall."""
    stmt = (
        select(Request, Community.name)
        .outerjoin(Community, Community.id == Request.community_id)
        .where(Request.kind == "wish", Request.status == lc.ROUTED, Request.emergency.is_(False))
        .order_by(Request.created_at, Request.id)
        .limit(limit)
        .offset(offset)
    )
    if community_id is not None:
        stmt = stmt.where(Request.community_id == community_id)
    if category is not None:
        stmt = stmt.where(Request.category == category)
    if request_id is not None:
        stmt = stmt.where(Request.id == request_id)
    rows = (await session.execute(stmt)).all()
    return [
        WallItem(
            request_id=r.id,
            number=r.number,
            category=r.category,
            category_name=category_name(r.category),
            community=name or "-",
            text=_wall_text(r.text),
            created_at=r.created_at,
        )
        for r, name in rows
    ]


async def _wish(session: AsyncSession, request_id: int) -> Request:
    request = await session.get(Request, request_id, with_for_update=True)
    if request is None or request.kind != "wish":
        raise NotFound("wish.not_found")
    return request


async def _claims(session: AsyncSession, request_id: int, *statuses: str) -> list[WishClaim]:
    stmt = select(WishClaim).where(WishClaim.request_id == request_id).order_by(WishClaim.id)
    if statuses:
        stmt = stmt.where(WishClaim.status.in_(statuses))
    return list(await session.scalars(stmt))


async def _claimer_label(session: AsyncSession, claimer: Claimer) -> str:
    if claimer.org_id is not None:
        name = await session.scalar(
            select(Organization.name).where(Organization.id == claimer.org_id)
        )
        return name or t("wish.volunteer")
    return t("wish.volunteer")


async def _tell_claimer(
    session: AsyncSession, claim: WishClaim, reply: Reply, dedupe_key: str
) -> None:
    if claim.claimer_user_id is not None:
        await notify_user(session, claim.claimer_user_id, reply, dedupe_key=dedupe_key)
    elif claim.claimer_org_id is not None:
        org = await session.get(Organization, claim.claimer_org_id)
        if org is not None:
            await notify_target_spec(session, org.notify, reply, dedupe_key=dedupe_key)


async def claim_wish(
    session: AsyncSession,
    request_id: int,
    claimer: Claimer,
    actor: Actor,
    *,
    now: datetime | None = None,
) -> WishClaim:
    """Take a wish off the wall (or join the claimers already on it)."""
    now = now or utcnow()
    request = await _wish(session, request_id)
    if claimer.user_id is not None and claimer.user_id == request.user_id:
        raise DomainError("wish.own_wish")
    if not lc.can("claim", request.status):
        raise DomainError("wish.not_claimable")
    active = await _claims(session, request_id, "active")
    if any(claimer.owns(c) for c in active):
        raise DomainError("wish.already_claimed")
    if len(active) >= MAX_CLAIMERS:
        raise DomainError("wish.enough_claimers", limit=MAX_CLAIMERS)
    claim = WishClaim(
        request_id=request.id,
        claimer_user_id=claimer.user_id,
        claimer_org_id=claimer.org_id,
        status="active",
        claimed_at=now,
        due_at=now + timedelta(days=CLAIM_DAYS),
    )
    session.add(claim)
    await session.flush()
    before = request.status
    request.status = lc.next_status("claim", before)
    request.updated_at = now
    if before == lc.ROUTED:
        request.accepted_at = now
        # The wish now belongs to its claimers, not to the organization it was routed to.
        request.org_id = claimer.org_id
    label = await _claimer_label(session, claimer)
    record_request_event(session, request, actor, "claim", before, label)
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(t("wish.notice_claimed", number=request.number, claimer=label)),
            prefer_channel=request.source_channel,
            dedupe_key=f"wish:{request.id}:claimed:{claim.id}",
        )
    return claim


def claim_reply(request: Request, claim: WishClaim, *, for_org: bool) -> Reply:
    """What the claimer sees: the wish (organizations also the phone) and what to do next."""
    text = request.text if for_org else mask_pii(request.text)
    phone = request.contact_phone if for_org and request.contact_phone else None
    return Reply(
        t(
            "wish.claimed_detail",
            number=request.number,
            text=text,
            due=claim.due_at.astimezone(_SHANGHAI).strftime("%m月%d日"),
            phone=phone or t("wish.phone_hidden"),
        ),
        (
            Button(t("wish.btn_fulfil"), f"{FULFIL}.{request.id}"),
            Button(t("wish.btn_withdraw"), f"{WITHDRAW}.{request.id}"),
        ),
    )


async def _back_to_wall_if_empty(
    session: AsyncSession, request: Request, actor: Actor, note: str
) -> None:
    await session.flush()  # the session does not autoflush: the query must see the change
    remaining = await _claims(session, request.id, "active", "fulfilled")
    if remaining or not lc.can("release", request.status):
        return
    before = request.status
    request.status = lc.next_status("release", before)
    request.org_id = None
    request.accepted_at = None
    request.updated_at = utcnow()
    record_request_event(session, request, actor, "release", before, note)


async def withdraw_claim(
    session: AsyncSession, request_id: int, claimer: Claimer, actor: Actor
) -> WishClaim:
    """The claimer gives the wish back; with nobody left it returns to the wall."""
    request = await _wish(session, request_id)
    mine = [c for c in await _claims(session, request_id, "active") if claimer.owns(c)]
    if not mine:
        raise DomainError("wish.not_your_claim")
    claim = mine[0]
    claim.status, claim.released_at = "withdrawn", utcnow()
    await _back_to_wall_if_empty(session, request, actor, "withdrawn")
    return claim


async def fulfil_wish(
    session: AsyncSession,
    request_id: int,
    claimer: Claimer,
    actor: Actor,
    *,
    note: str,
    media: str | None = None,
) -> WishClaim:
    """The claimer reports it done with a short proof; the resident is asked to confirm."""
    note = (note or "").strip()
    if not note and not media:
        raise DomainError("wish.proof_required")
    request = await _wish(session, request_id)
    mine = [c for c in await _claims(session, request_id, "active") if claimer.owns(c)]
    if not mine:
        raise DomainError("wish.not_your_claim")
    now = utcnow()
    for claim in await _claims(session, request_id, "active"):
        # One fulfilment completes the wish for every joint claimer.
        claim.status, claim.fulfilled_at = "fulfilled", now
    mine[0].proof_note, mine[0].proof_media = note[:500] or None, media
    before = request.status
    request.status = lc.next_status("resolve", before)
    request.result_note = note[:1000] or None
    request.resolved_at = request.updated_at = now
    record_request_event(session, request, actor, "fulfil", before, request.result_note)
    if request.user_id is not None:
        await notify_user(
            session,
            request.user_id,
            Reply(
                t("wish.notice_fulfilled", number=request.number, note=note or "-"),
                (
                    Button(t("wish.btn_confirm"), f"{CONFIRM}.{request.id}"),
                    Button(t("wish.btn_not_yet"), f"{NOT_YET}.{request.id}"),
                ),
            ),
            prefer_channel=request.source_channel,
            dedupe_key=f"wish:{request.id}:fulfilled:{int(now.timestamp())}",
        )
    return mine[0]


async def confirm_wish(
    session: AsyncSession, request_id: int, user_id: int, actor: Actor
) -> list[WishClaim]:
    """圆梦: the resident confirms; each volunteer earns their share of the points, once."""
    request = await _wish(session, request_id)
    if request.user_id != user_id:
        raise NotFound("wish.not_found")
    fulfilled = await _claims(session, request_id, "fulfilled")
    if request.status != lc.RESOLVED or not fulfilled:
        raise DomainError("wish.nothing_to_confirm")
    now = utcnow()
    volunteers = [c for c in fulfilled if c.claimer_user_id is not None]
    if volunteers and request.community_id is not None:
        # the ledger's global lock order, before the first of several postings
        await lock_accounts(
            session,
            [
                pool_account(request.community_id),
                *(user_account(c.claimer_user_id) for c in volunteers if c.claimer_user_id),
            ],
        )
    share = max(1, WISH_POINTS // len(volunteers)) if volunteers else 0
    for claim in fulfilled:
        claim.status, claim.confirmed_at = "confirmed", now
        if claim.claimer_user_id is not None:
            txn = await earn_points(
                session,
                user_id=claim.claimer_user_id,
                amount=share,
                key=f"wish:{request.id}:claim:{claim.id}",
                reason=t("wish.points_reason", number=request.number),
                actor=actor.label,
                community_id=request.community_id,
                ref_type="wish",
                ref_id=str(request.id),
            )
            claim.points_txn_id = txn.id
        reply = Reply(
            t(
                "wish.notice_confirmed",
                number=request.number,
                points=share if claim.claimer_user_id is not None else 0,
            )
        )
        await _tell_claimer(session, claim, reply, f"wish:{request.id}:confirmed:{claim.id}")
    record_request_event(session, request, actor, "confirm", request.status)
    return fulfilled


def confirmed_reply(request: Request) -> Reply:
    return Reply(t("wish.thanks_rate", number=request.number), rating_buttons(request))


async def reject_fulfilment(
    session: AsyncSession, request_id: int, user_id: int, actor: Actor, note: str | None = None
) -> Request:
    """Not come true yet: the claimers get it back with a few more days."""
    request = await _wish(session, request_id)
    if request.user_id != user_id:
        raise NotFound("wish.not_found")
    fulfilled = await _claims(session, request_id, "fulfilled")
    if not fulfilled or not lc.can("reopen", request.status):
        raise DomainError("wish.nothing_to_confirm")
    now = utcnow()
    before = request.status
    request.status = lc.next_status("reopen", before)
    request.resolved_at = None
    request.updated_at = now
    record_request_event(session, request, actor, "reopen", before, (note or "")[:500] or None)
    for claim in fulfilled:
        claim.status, claim.fulfilled_at, claim.reminded_at = "active", None, None
        claim.due_at = now + timedelta(days=REOPEN_DAYS)
        await _tell_claimer(
            session,
            claim,
            Reply(t("wish.notice_reopened", number=request.number, days=REOPEN_DAYS)),
            f"wish:{request.id}:reopened:{claim.id}:{int(now.timestamp())}",
        )
    return request


async def sweep_claims(session: AsyncSession, now: datetime | None = None) -> tuple[int, int]:
    """Remind claims that run out within a day; release those that ran out (idempotent)."""
    now = now or utcnow()
    reminded = released = 0
    due_soon = await session.scalars(
        select(WishClaim).where(
            WishClaim.status == "active",
            WishClaim.reminded_at.is_(None),
            WishClaim.due_at <= now + REMIND_BEFORE,
            WishClaim.due_at > now,
        )
    )
    for claim in list(due_soon):
        request = await session.get(Request, claim.request_id)
        claim.reminded_at = now
        if request is not None:
            await _tell_claimer(
                session,
                claim,
                Reply(
                    t("wish.notice_due_soon", number=request.number),
                    (Button(t("wish.btn_fulfil"), f"{FULFIL}.{request.id}"),),
                ),
                f"wish:{request.id}:due_soon:{claim.id}:{claim.due_at.isoformat()}",
            )
        reminded += 1
    expired = await session.scalars(
        select(WishClaim).where(WishClaim.status == "active", WishClaim.due_at <= now)
    )
    for claim in list(expired):
        claim.status, claim.released_at = "released", now
        request = await _wish(session, claim.request_id)
        await _tell_claimer(
            session,
            claim,
            Reply(t("wish.notice_released", number=request.number)),
            f"wish:{request.id}:released:{claim.id}",
        )
        await _back_to_wall_if_empty(session, request, Actor("system"), "claim expired")
        released += 1
    return reminded, released


async def my_claims(session: AsyncSession, claimer: Claimer) -> list[tuple[WishClaim, Request]]:
    """The claimer's open claims, soonest due first."""
    stmt = (
        select(WishClaim, Request)
        .join(Request, Request.id == WishClaim.request_id)
        .where(WishClaim.status.in_(("active", "fulfilled")))
        .order_by(WishClaim.due_at)
    )
    if claimer.user_id is not None:
        stmt = stmt.where(WishClaim.claimer_user_id == claimer.user_id)
    else:
        stmt = stmt.where(WishClaim.claimer_org_id == claimer.org_id)
    return [(c, r) for c, r in (await session.execute(stmt)).all()]


async def count_open_wishes(session: AsyncSession, community_id: int | None = None) -> int:
    stmt = select(func.count()).where(Request.kind == "wish", Request.status == lc.ROUTED)
    if community_id is not None:
        stmt = stmt.where(Request.community_id == community_id)
    return int(await session.scalar(stmt) or 0)


def wall_button() -> Button:
    return Button(t("wish.btn_wall"), WALL)
