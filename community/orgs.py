"""Organizations: lookup by notify target, creation and validated bulk import."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor, record_audit
from community.notify import is_valid_notify
from nlp.taxonomy import CATEGORIES
from storage.models import Community, Organization, OrgCategory, OrgCommunity


def notify_spec_for(channel: str, address: str) -> str | None:
    """The ``notify`` value that would deliver to (channel, address)."""
    if channel == "telegram":
        return f"telegram:{address}"
    if channel.startswith("generic:"):
        return f"{channel}:{address}"
    return None


async def orgs_for_contact(
    session: AsyncSession, channel: str, addresses: Iterable[str]
) -> list[Organization]:
    """Organizations whose notify target is this chat or person (who may act for them)."""
    specs = {s for a in addresses if a and (s := notify_spec_for(channel, a))}
    if not specs:
        return []
    return list(
        await session.scalars(
            select(Organization).where(Organization.notify.in_(specs), Organization.active)
        )
    )


@dataclass
class OrgSpec:
    name: str
    type: str
    categories: list[str]
    communities: list[str] | None  # None = all
    notify: str
    line: int = 0
    errors: list[str] = field(default_factory=list)


def parse_org_row(row: dict[str, str], line: int, known_communities: set[str]) -> OrgSpec:
    """Validate one import row; problems are collected, not raised, to report them all."""
    get = lambda k: (row.get(k) or "").strip()  # noqa: E731
    spec = OrgSpec(
        name=get("name"),
        type=get("type") or "社会组织",
        categories=[c.strip() for c in get("categories").split("|") if c.strip()],
        communities=None,
        notify=get("notify"),
        line=line,
    )
    if not spec.name:
        spec.errors.append("name is empty")
    elif len(spec.name) > 128:
        spec.errors.append("name is longer than 128 characters")
    if not spec.categories:
        spec.errors.append("categories is empty")
    for category in spec.categories:
        if category not in CATEGORIES:
            spec.errors.append(f"unknown category {category!r}")
    communities = get("communities")
    if communities != "*":
        names = [c.strip() for c in communities.split("|") if c.strip()]
        if not names:
            spec.errors.append("communities is empty (use * for all)")
        for name in names:
            if name not in known_communities:
                spec.errors.append(f"unknown community {name!r}")
        spec.communities = names
    if not is_valid_notify(spec.notify):
        spec.errors.append(f"notify {spec.notify!r} is not a known target")
    return spec


async def upsert_organization(session: AsyncSession, spec: OrgSpec, actor: Actor) -> Organization:
    """Create or update an organization by name, with its categories and communities."""
    org = await session.scalar(select(Organization).where(Organization.name == spec.name))
    created = org is None
    if org is None:
        org = Organization(name=spec.name)
        session.add(org)
    org.type = spec.type
    org.notify = spec.notify or None
    org.all_communities = spec.communities is None
    org.active = True
    await session.flush()
    await session.execute(delete(OrgCategory).where(OrgCategory.org_id == org.id))
    await session.execute(delete(OrgCommunity).where(OrgCommunity.org_id == org.id))
    for category in dict.fromkeys(spec.categories):
        session.add(OrgCategory(org_id=org.id, category=category))
    if spec.communities:
        ids = await session.scalars(
            select(Community.id).where(Community.name.in_(spec.communities))
        )
        for community_id in ids:
            session.add(OrgCommunity(org_id=org.id, community_id=community_id))
    record_audit(
        session,
        actor,
        "org_create" if created else "org_update",
        f"org:{org.id}",
        {"name": org.name, "categories": spec.categories},
    )
    return org


async def org_categories(session: AsyncSession, org_id: int) -> list[str]:
    return list(
        await session.scalars(select(OrgCategory.category).where(OrgCategory.org_id == org_id))
    )


async def list_organizations(session: AsyncSession, active_only: bool = True) -> list[Organization]:
    stmt = select(Organization).order_by(Organization.name)
    if active_only:
        stmt = stmt.where(Organization.active)
    return list(await session.scalars(stmt))


async def organization_id_by_name(session: AsyncSession, name: str) -> int | None:
    return await session.scalar(select(Organization.id).where(Organization.name == name))


async def community_id_by_name(session: AsyncSession, name: str) -> int | None:
    return await session.scalar(select(Community.id).where(Community.name == name))
