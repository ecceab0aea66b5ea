"""志愿服务证明: a numbered snapshot of a volunteer's verified hours.

Verified hours are the sign-ups marked ``attended`` (with hours) of activities whose
attendance was confirmed (``finished``). The 志愿服务记录与证明出具办法 has the
organization that recorded the service issue the proof, so by default a certificate lists
the issuing organization's activities only; ``org_only=False`` lets the community (or a
hub organization) issue one over all of them, each line naming its organization.

The certificate freezes the records at issue time: later corrections make a new
certificate with a new number, the old one stays as it was printed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community import clock
from community.audit import Actor, record_audit
from community.catalog import t
from community.errors import DomainError, Forbidden, NotFound
from community.numbering import next_value
from community.timebank.common import CHINA, STAFF_KINDS, actor_org_id, as_actor, china_date
from storage.models import (
    Activity,
    ActivitySignup,
    Certificate,
    Community,
    Organization,
    User,
)

NUMBER_PREFIX = "ZYZM"


async def verified_records(
    session: AsyncSession, user_id: int, *, org_id: int | None = None
) -> list[dict[str, Any]]:
    """The resident's attended, confirmed activities, oldest first, one dict per activity."""
    stmt = (
        select(
            Activity.id,
            Activity.number,
            Activity.title,
            Activity.starts_at,
            ActivitySignup.hours,
            Organization.name,
        )
        .join(Activity, Activity.id == ActivitySignup.activity_id)
        .join(Organization, Organization.id == Activity.org_id)
        .where(
            ActivitySignup.user_id == user_id,
            ActivitySignup.attendance == "attended",
            ActivitySignup.hours > 0,
            Activity.status == "finished",
        )
        .order_by(Activity.starts_at, Activity.id)
    )
    if org_id is not None:
        stmt = stmt.where(Activity.org_id == org_id)
    return [
        {
            "activity_id": aid,
            "number": number,
            "title": title,
            "date": china_date(starts_at),
            "hours": round(float(hours), 2),
            "org": org_name,
        }
        for aid, number, title, starts_at, hours, org_name in await session.execute(stmt)
    ]


def _may_issue(actor: Actor, user_id: int, issuer_org_id: int) -> bool:
    if actor.kind in STAFF_KINDS or actor.kind == "system":
        return True
    if actor.kind == "resident":
        return actor.id == str(user_id)
    return actor_org_id(actor) == issuer_org_id


async def issue_certificate(
    session: AsyncSession,
    *,
    user_id: int,
    issuer_org_id: int,
    actor: str | Actor,
    holder_name: str | None = None,
    org_only: bool = True,
    now: datetime | None = None,
) -> Certificate:
    """Number and store a certificate of the resident's verified hours.

    The resident may ask for their own; the issuing organization and staff for anyone.
    ``holder_name`` is the name to print (a chat nickname is the fallback).
    """
    who = as_actor(actor)
    if not _may_issue(who, user_id, issuer_org_id):
        raise Forbidden("timebank.not_allowed")
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("timebank.user_not_found")
    org = await session.get(Organization, issuer_org_id)
    if org is None or not org.active:
        raise DomainError("timebank.cert_bad_issuer")
    name = (holder_name or user.display_name or "").strip()[:64]
    if not name:
        raise DomainError("timebank.cert_no_name")
    records = await verified_records(session, user_id, org_id=issuer_org_id if org_only else None)
    if not records:
        raise DomainError("timebank.cert_no_records")
    now = now or clock.now()
    year = now.astimezone(CHINA).year
    # A per-year counter (numbering.py): on PostgreSQL it advances in its own short
    # transaction, so a refused or rolled-back issue leaves a gap, never a duplicate.
    serial = await next_value(session, f"cert:{year}")
    certificate = Certificate(
        number=f"{NUMBER_PREFIX}-{year}-{serial:06d}",
        user_id=user_id,
        holder_name=name,
        issuer_org_id=org.id,
        community_id=user.community_id,
        hours=round(sum(r["hours"] for r in records), 2),
        records=records,
        issued_by=who.label[:64],
        issued_at=now,
    )
    session.add(certificate)
    await session.flush()
    record_audit(
        session,
        who,
        "timebank.certificate",
        f"certificate:{certificate.id}",
        {"number": certificate.number, "user": user_id, "hours": certificate.hours},
    )
    return certificate


async def get_certificate(
    session: AsyncSession, certificate_id: int, *, user_id: int | None = None
) -> Certificate:
    """A certificate; with ``user_id``, only that resident's own (others look missing)."""
    certificate = await session.get(Certificate, certificate_id)
    if certificate is None or (user_id is not None and certificate.user_id != user_id):
        raise NotFound("timebank.cert_not_found")
    return certificate


async def list_certificates(session: AsyncSession, user_id: int) -> list[Certificate]:
    rows = await session.scalars(
        select(Certificate).where(Certificate.user_id == user_id).order_by(Certificate.id.desc())
    )
    return list(rows)


async def certificate_pdf(
    session: AsyncSession, certificate_id: int, *, user_id: int | None = None
) -> tuple[str, bytes]:
    """(file name, PDF bytes) of a certificate, for the resident's download.

    With ``user_id`` only the resident's own certificate is found (anyone else's looks
    missing). The rendering runs in a worker thread: it is CPU work.
    """
    from community.timebank.pdf import render_certificate_pdf  # reportlab loads on first use

    certificate = await get_certificate(session, certificate_id, user_id=user_id)
    content = await certificate_content(session, certificate)
    data = await asyncio.to_thread(render_certificate_pdf, content)
    return f"{certificate.number}.pdf", data


def format_hours(hours: float) -> str:
    """2.0 → "2", 2.5 → "2.5": how a person writes hours."""
    return f"{hours:.2f}".rstrip("0").rstrip(".")


async def certificate_content(session: AsyncSession, certificate: Certificate) -> dict[str, Any]:
    """Everything the printed certificate says, as plain data (the web page and the PDF)."""
    issuer = (
        await session.get(Organization, certificate.issuer_org_id)
        if certificate.issuer_org_id
        else None
    )
    community = (
        await session.get(Community, certificate.community_id) if certificate.community_id else None
    )
    issued = certificate.issued_at.astimezone(CHINA)
    total = format_hours(certificate.hours)
    issuer_name = issuer.name if issuer else "-"
    return {
        "title": t("timebank.cert.title"),
        "number": certificate.number,
        "holder_name": certificate.holder_name,
        "intro": t(
            "timebank.cert.intro",
            name=certificate.holder_name,
            count=len(certificate.records),
            hours=total,
        ),
        "columns": [t(f"timebank.cert.col_{c}") for c in ("no", "date", "title", "org", "hours")],
        "records": [
            {
                "date": r["date"],
                "title": r["title"],
                "org": r["org"],
                "hours": format_hours(float(r["hours"])),
            }
            for r in certificate.records
        ],
        "total_hours": total,
        "total_line": t("timebank.cert.total", hours=total),
        "issuer": issuer_name,
        "issuer_line": t("timebank.cert.issuer", org=issuer_name),
        "community_line": t(
            "timebank.cert.community", community=community.name if community else "-"
        ),
        "issued_on": t("timebank.cert.date", y=issued.year, m=issued.month, d=issued.day),
        "number_line": t("timebank.cert.number", number=certificate.number),
        "seal": t("timebank.cert.seal"),
        "statement": t("timebank.cert.statement"),
        "basis": t("timebank.cert.basis"),
    }
