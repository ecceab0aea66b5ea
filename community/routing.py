"""Choosing the organization for a request.

Rule (issue 2): an active organization that serves the category in the resident's
community (or all communities) and has not declined this request; among several, the one
with the fewest open requests (ties: the oldest organization). None → staff review.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from community.lifecycle import ACCEPTED, IN_PROGRESS, ROUTED
from storage.models import Organization, OrgCategory, OrgCommunity, Request


def _candidates_statement():  # type: ignore[no-untyped-def]
    """Built once: the statement is the same for every request, only the values change."""
    open_count = (
        select(func.count(Request.id))
        .where(
            Request.org_id == Organization.id,
            Request.status.in_((ROUTED, ACCEPTED, IN_PROGRESS)),
        )
        .correlate(Organization)
        .scalar_subquery()
    )
    serves_community = or_(
        Organization.all_communities.is_(True),
        select(OrgCommunity.org_id)
        .where(
            and_(
                OrgCommunity.org_id == Organization.id,
                OrgCommunity.community_id == bindparam("community_id"),
            )
        )
        .exists(),
    )
    return (
        select(Organization)
        .join(OrgCategory, OrgCategory.org_id == Organization.id)
        .where(
            Organization.active.is_(True),
            OrgCategory.category == bindparam("category"),
            serves_community,
            Organization.id.not_in(bindparam("excluded", expanding=True)),
        )
        .order_by(open_count, Organization.id)
    )


_CANDIDATES = _candidates_statement()


async def candidate_organizations(
    session: AsyncSession,
    category: str,
    community_id: int | None,
    exclude: Iterable[int] = (),
) -> list[Organization]:
    """Eligible organizations, best first."""
    params = {"category": category, "community_id": community_id, "excluded": list(exclude)}
    return list(await session.scalars(_CANDIDATES, params))


async def choose_organization(
    session: AsyncSession, category: str, community_id: int | None, exclude: Iterable[int] = ()
) -> Organization | None:
    found = await candidate_organizations(session, category, community_id, exclude)
    return found[0] if found else None
