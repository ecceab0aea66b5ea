"""A resident's right to erasure: personal details go, the anonymous service record stays."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor, record_audit
from nlp.extract import mask_pii
from storage.models import Consent, Request, User, utcnow


async def erase_user(session: AsyncSession, user: User, actor: Actor) -> int:
    """Erase phone, address, name and consent; mask personal data in request texts.

    Requests stay (organizations and the monthly ledger count them) but no longer say who
    or where. Returns the number of requests touched.
    """
    user.phone = None
    user.address = None
    user.display_name = None
    user.consented_at = None
    user.deleted_at = utcnow()
    await session.execute(
        update(Consent)
        .where(Consent.user_id == user.id, Consent.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    requests = list(await session.scalars(select(Request).where(Request.user_id == user.id)))
    for request in requests:
        request.contact_phone = None
        request.text = mask_pii(request.text)
    record_audit(session, actor, "erase_user", f"user:{user.id}", {"requests": len(requests)})
    return len(requests)
