"""The demo data set: 2 streets, 5 communities, 12 organizations covering every category.

Loading it twice changes nothing (everything is looked up by name first). Each demo
organization gets a dashboard login; passwords are printed once, on first creation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor
from community.orgs import OrgSpec, upsert_organization
from storage.models import Community, Organization, StaffAccount, Street

DEMO_ACTOR = Actor("system", "demo")

STREETS: dict[str, list[str]] = {
    "梅园街道": ["桂花社区", "梅园新村社区", "清风苑社区"],
    "湖滨街道": ["湖滨社区", "柳岸社区"],
}

# name, type, categories, communities (None = all), demo login
ORGANIZATIONS: list[tuple[str, str, list[str], list[str] | None, str]] = [
    ("夕阳红居家养老服务中心", "社会组织", ["elderly"], None, "org_yanglao"),
    ("阳光助残康复站", "社会组织", ["disability", "health"], None, "org_zhucan"),
    ("彩虹桥青少年社工站", "社工机构", ["children"], None, "org_qingshao"),
    ("暖心社会救助服务社", "社会组织", ["assistance"], None, "org_jiuzhu"),
    ("启航就业服务站", "社会组织", ["employment"], None, "org_jiuye"),
    ("和事佬人民调解工作室", "社会组织", ["legal"], None, "org_tiaojie"),
    ("心桥心理服务中心", "社工机构", ["mental"], None, "org_xinli"),
    ("仁心家庭医生团队", "社区卫生服务站", ["health"], None, "org_yiliao"),
    ("悦动文体协会", "社会组织", ["culture"], None, "org_wenti"),
    (
        "梅园物业服务中心",
        "物业企业",
        ["environment"],
        ["桂花社区", "梅园新村社区", "清风苑社区"],
        "org_wuye_my",
    ),
    ("湖滨物业服务中心", "物业企业", ["environment"], ["湖滨社区", "柳岸社区"], "org_wuye_hb"),
    ("平安守望志愿队", "志愿服务队", ["safety"], None, "org_pingan"),
    ("邻里帮便民服务社", "社会组织", ["housekeeping"], None, "org_bianmin"),
]


@dataclass
class DemoResult:
    created_orgs: int
    logins: list[tuple[str, str, str]]  # (username, password, what for)


async def load_demo(session: AsyncSession) -> DemoResult:
    from community.staff import create_staff

    for street_name, community_names in STREETS.items():
        street = await session.scalar(select(Street).where(Street.name == street_name))
        if street is None:
            street = Street(name=street_name)
            session.add(street)
            await session.flush()
        for name in community_names:
            if await session.scalar(select(Community.id).where(Community.name == name)) is None:
                session.add(Community(street_id=street.id, name=name))
    await session.flush()

    created = 0
    logins: list[tuple[str, str, str]] = []
    for name, org_type, categories, communities, login in ORGANIZATIONS:
        org = await session.scalar(select(Organization).where(Organization.name == name))
        if org is None:
            org = await upsert_organization(
                session,
                OrgSpec(
                    name=name,
                    type=org_type,
                    categories=categories,
                    communities=communities,
                    notify="",
                ),
                DEMO_ACTOR,
            )
            created += 1
        if await session.scalar(select(StaffAccount.id).where(StaffAccount.username == login)):
            continue
        _, password = await create_staff(session, login, "org", org_id=org.id, actor=DEMO_ACTOR)
        logins.append((login, password, name))

    if not await session.scalar(select(StaffAccount.id).where(StaffAccount.username == "staff")):
        _, password = await create_staff(session, "staff", "admin", actor=DEMO_ACTOR)
        logins.insert(0, ("staff", password, "社区工作人员（管理员）"))
    return DemoResult(created_orgs=created, logins=logins)
