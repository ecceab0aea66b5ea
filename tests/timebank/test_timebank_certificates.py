"""志愿服务证明: verified hours only, yearly numbers, who may issue, content and PDF."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from community.audit import Actor
from community.catalog import t
from community.errors import DomainError, Forbidden, NotFound
from community.timebank import (
    certificate_content,
    certificate_pdf,
    get_certificate,
    issue_certificate,
    list_certificates,
    render_certificate_pdf,
)
from storage.db import transaction
from storage.models import Activity, ActivitySignup, AuditLog, User

ISSUED = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
STAFF = Actor("staff", "dash:1")


async def add_activity(
    session, world, n: int, *, org: int, status: str = "finished", day: int = 1
) -> Activity:
    starts = datetime(2026, 10, day, 1, 0, tzinfo=UTC)
    activity = Activity(
        number=f"A2610-{n:04d}",
        org_id=org,
        community_id=world.community_id,
        category="elderly",
        title=f"敬老院陪伴聊天<第{n}场>",
        place="桂花敬老院",
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        checkin_secret="s",
        created_by="staff:dash:1",
        status=status,
    )
    session.add(activity)
    await session.flush()
    return activity


async def attend(session, activity: Activity, user: int, hours: float | None, how="attended"):
    session.add(
        ActivitySignup(
            activity_id=activity.id, user_id=user, status="confirmed", attendance=how, hours=hours
        )
    )


@pytest.fixture
async def served(world) -> int:
    """users[0] served: 2.5 h + 3 h with org, 1 h with other_org; three lines that do not count."""
    u = world.users[0]
    async with transaction(world.factory) as session:
        await attend(
            session, await add_activity(session, world, 1, org=world.org_id, day=3), u, 2.5
        )
        await attend(
            session, await add_activity(session, world, 2, org=world.org_id, day=9), u, 3.0
        )
        other = await add_activity(session, world, 3, org=world.other_org_id, day=5)
        await attend(session, other, u, 1.0)
        unconfirmed = await add_activity(session, world, 4, org=world.org_id, status="published")
        await attend(session, unconfirmed, u, 2.0)
        await attend(
            session, await add_activity(session, world, 5, org=world.org_id), u, None, "no_show"
        )
        await attend(session, await add_activity(session, world, 6, org=world.org_id), u, 0.0)
    return u


async def refused(world, snapshot, action, error=DomainError) -> DomainError:
    before = await snapshot()
    async with transaction(world.factory) as session:
        with pytest.raises(error) as caught:
            await action(session)
    assert await snapshot() == before
    assert t(caught.value.key, **caught.value.params)  # every refusal has its Chinese text
    return caught.value


def pdf_text(data: bytes) -> bytes:
    """The page content streams, decoded (ASCII85 + Flate, as reportlab writes them)."""
    out = b""
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = match.group(1).strip()
        if raw.endswith(b"~>"):
            raw = zlib.decompress(base64.a85decode(raw[:-2].replace(b"\n", b"")))
        out += raw + b"\n"
    return out


async def test_numbers_per_year_and_verified_hours_only(world, served) -> None:
    u = served
    async with transaction(world.factory) as session:
        first = await issue_certificate(
            session, user_id=u, issuer_org_id=world.org_id, actor=f"resident:{u}", now=ISSUED
        )
        assert first.number == "ZYZM-2026-000001"
        assert first.hours == 5.5 and first.holder_name == "王阿姨"
        assert [r["date"] for r in first.records] == ["2026-10-03", "2026-10-09"]
        assert {r["org"] for r in first.records} == {"梅园志愿者协会"}
        everything = await issue_certificate(
            session,
            user_id=u,
            issuer_org_id=world.org_id,
            actor=STAFF,
            holder_name="王秀英",
            org_only=False,
            now=ISSUED,
        )
        assert everything.number == "ZYZM-2026-000002"
        assert everything.hours == 6.5 and everything.holder_name == "王秀英"
        assert [r["org"] for r in everything.records] == [
            "梅园志愿者协会",
            "桂花老年服务中心",
            "梅园志愿者协会",
        ]
        next_year = await issue_certificate(
            session,
            user_id=u,
            issuer_org_id=world.other_org_id,
            actor=f"org:{world.other_org_id}/dash:4",
            now=datetime(2026, 12, 31, 17, 0, tzinfo=UTC),  # 1 Jan 2027 in Beijing
        )
        assert next_year.number == "ZYZM-2027-000001" and next_year.hours == 1.0
    async with world.factory() as session:
        audits = await session.scalars(
            select(AuditLog.target).where(AuditLog.action == "timebank.certificate")
        )
        assert len(audits.all()) == 3
        mine = await list_certificates(session, u)
        assert [c.number for c in mine] == [
            "ZYZM-2027-000001",
            "ZYZM-2026-000002",
            "ZYZM-2026-000001",
        ]
        assert (await get_certificate(session, first.id, user_id=u)).number == first.number
        with pytest.raises(NotFound):
            await get_certificate(session, first.id, user_id=world.users[1])


async def test_refusals_issue_nothing(world, served, snapshot) -> None:
    u, other = served, world.users[1]
    await refused(
        world,
        snapshot,
        lambda s: issue_certificate(
            s, user_id=u, issuer_org_id=world.org_id, actor=f"resident:{other}"
        ),
        Forbidden,
    )
    await refused(
        world,
        snapshot,
        lambda s: issue_certificate(
            s, user_id=u, issuer_org_id=world.org_id, actor=f"org:{world.other_org_id}/dash:4"
        ),
        Forbidden,
    )
    error = await refused(
        world,
        snapshot,
        lambda s: issue_certificate(s, user_id=other, issuer_org_id=world.org_id, actor=STAFF),
    )
    assert error.key == "timebank.cert_no_records"
    error = await refused(
        world, snapshot, lambda s: issue_certificate(s, user_id=u, issuer_org_id=4242, actor=STAFF)
    )
    assert error.key == "timebank.cert_bad_issuer"
    async with transaction(world.factory) as session:
        user = await session.get(User, other)
        user.display_name = None
    error = await refused(
        world,
        snapshot,
        lambda s: issue_certificate(
            s, user_id=other, issuer_org_id=world.org_id, actor=STAFF, holder_name="  "
        ),
    )
    assert error.key == "timebank.cert_no_name"


async def test_content_and_pdf(world, served) -> None:
    u = served
    async with transaction(world.factory) as session:
        cert = await issue_certificate(
            session, user_id=u, issuer_org_id=world.org_id, actor=STAFF, org_only=False, now=ISSUED
        )
        content = await certificate_content(session, cert)
    assert content["number"] == "ZYZM-2026-000001"
    assert content["total_hours"] == "6.5" and content["holder_name"] == "王阿姨"
    assert content["records"][0] == {
        "date": "2026-10-03",
        "title": "敬老院陪伴聊天<第1场>",
        "org": "梅园志愿者协会",
        "hours": "2.5",
    }
    assert content["issuer"] == "梅园志愿者协会"
    assert content["issued_on"].endswith("2026年11月1日")
    assert "已核实" in content["statement"] and "桂花社区" in content["community_line"]
    assert "6.5" in content["intro"] and "3" in content["intro"]

    data = render_certificate_pdf(content)
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert b"/Subject (ZYZM-2026-000001)" in data
    text = pdf_text(data)
    assert b"(ZYZM-2026-000001) Tj" in text  # the number, in Helvetica
    assert b"(2026-10-03) Tj" in text and b"(2.5) Tj" in text
    assert b"STSong-Light" in data
    assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 1

    async with world.factory() as session:  # the resident's download
        name, download = await certificate_pdf(session, cert.id, user_id=u)
        assert name == "ZYZM-2026-000001.pdf" and download.startswith(b"%PDF-")
        with pytest.raises(NotFound):
            await certificate_pdf(session, cert.id, user_id=world.users[1])

    many = {**content, "records": content["records"] * 40}
    long_pdf = render_certificate_pdf(many)
    assert len(re.findall(rb"/Type /Page[^s]", long_pdf)) >= 3  # the table breaks across pages
