"""Choosing the organization for a request.

Rule (issue 2): an active organization that serves the category in the resident's
community (or all communities) and has not declined this request; among several, the one
with the fewest open requests (ties: the oldest organization). None → staff review.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from community.lifecycle import ACCEPTED, IN_PROGRESS, ROUTED
from storage.models import Organization, OrgCategory, OrgCommunity, Request


async def candidate_organizations(
    session: AsyncSession,
    category: str,
    community_id: int | None,
    exclude: Iterable[int] = (),
) -> list[Organization]:
    """Eligible organizations, best first."""
    open_count = (
        select(func.count(Request.id))
        .where(
            Request.org_id == Organization.id,
            Request.status.in_((ROUTED, ACCEPTED, IN_PROGRESS)),
        )
        .correlate(Organization)
        .scalar_subquery()
    )
    serves_community = Organization.all_communities.is_(True)
    if community_id is not None:
        serves_community = or_(
            serves_community,
            select(OrgCommunity.org_id)
            .where(
                and_(
                    OrgCommunity.org_id == Organization.id,
                    OrgCommunity.community_id == community_id,
                )
            )
            .exists(),
        )
    stmt = (
        select(Organization)
        .join(OrgCategory, OrgCategory.org_id == Organization.id)
        .where(
            Organization.active.is_(True),
            OrgCategory.category == category,
            serves_community,
        )
        .order_by(open_count, Organization.id)
    )
    excluded = set(exclude)
    if excluded:
        stmt = stmt.where(Organization.id.not_in(excluded))
    return list(await session.scalars(stmt))


async def choose_organization(
    session: AsyncSession, category: str, community_id: int | None, exclude: Iterable[int] = ()
) -> Organization | None:
    found = await candidate_organizations(session, category, community_id, exclude)
    return found[0] if found else None
