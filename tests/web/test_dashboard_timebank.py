"""Staff time-bank pages: rewards, pickup codes, point corrections, certificates (and /me)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from community.activities import confirm_attendance, finish_activity
from community.audit import Actor
from community.catalog import t
from community.timebank import earn_points, redeem_reward, user_balance
from storage.db import transaction
from storage.models import AuditLog, Certificate, LedgerTransaction, Redemption, Reward
from tests.web.test_dashboard_activities_support import (
    Seed,
    activities_env,
    make_activity,
    post_form,
    resident_client,
    sign_up_all,
    signup_of,
    staff_client,
)

REWARDS = "/staff/rewards"


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, Seed]]:
    async with activities_env(tmp_path, database_url) as pair:
        yield pair


async def _rewards(app: FastAPI) -> list[Reward]:
    async with app.state.runtime.factory() as session:
        return list(await session.scalars(select(Reward).order_by(Reward.id)))


async def _balance(app: FastAPI, user_id: int) -> int:
    async with app.state.runtime.factory() as session:
        return await user_balance(session, user_id)


async def _give_points(app: FastAPI, user_id: int, amount: int) -> None:
    async with transaction(app.state.runtime.factory) as session:
        await earn_points(
            session,
            user_id=user_id,
            amount=amount,
            key=f"seed:{user_id}",
            reason="种子",
            actor="system",
        )


async def _redeem(app: FastAPI, s: Seed, provider: int | None = None) -> Redemption:
    """张三丰 (20 points) redeems a 10-point reward of community X; returns the redemption."""
    await _give_points(app, s.residents[0], 20)
    async with transaction(app.state.runtime.factory) as session:
        reward = Reward(
            title="环保袋", price=10, stock=2, community_id=s.community_x, provider_org_id=provider
        )
        session.add(reward)
        await session.flush()
        return await redeem_reward(
            session, user_id=s.residents[0], reward_id=reward.id, key="redeem:1"
        )


async def _redemption(app: FastAPI, redemption_id: int) -> Redemption:
    async with app.state.runtime.factory() as session:
        row = await session.get(Redemption, redemption_id)
        assert row is not None
        return row


async def test_rewards_create_update_deactivate(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with staff_client(app, s, "staff-x") as http:
        bad = await post_form(
            http, REWARDS, page=REWARDS, title="老年大学体验课", price="十分", stock="3"
        )
        assert bad.status_code == 400
        assert t("dacts.error.price_number") in bad.text and 'value="老年大学体验课"' in bad.text
        created = await post_form(
            http,
            REWARDS,
            page=REWARDS,
            title="老年大学体验课",
            kind="service",
            price="30",
            stock="3",
        )
        assert created.status_code == 303
        [reward] = await _rewards(app)
        assert (reward.price, reward.stock, reward.kind) == (30, 3, "service")
        assert reward.community_id == s.community_x  # a staff member's own community
        page = (await http.get(REWARDS)).text
        assert "老年大学体验课" in page
        changed = await post_form(
            http, f"{REWARDS}/{reward.id}", page=REWARDS, price="25", stock="9"
        )
        assert changed.status_code == 303
        refused = await post_form(
            http, f"{REWARDS}/{reward.id}", page=REWARDS, price="0", stock="9"
        )
        assert t("timebank.bad_amount") in (await http.get(refused.headers["location"])).text
        [reward] = await _rewards(app)
        assert (reward.price, reward.stock) == (25, 9)
        gone = await post_form(http, f"{REWARDS}/{reward.id}/deactivate", page=REWARDS)
        page = (await http.get(gone.headers["location"])).text
        assert t("dacts.flash.reward_deactivated", title="老年大学体验课") in page
    [reward] = await _rewards(app)
    assert reward.active is False
    async with staff_client(app, s, "org-a") as http:
        assert (
            await post_form(http, REWARDS, page=REWARDS, title="x", price="1", stock="1")
        ).status_code == 403


async def test_staff_of_another_community_cannot_change_a_reward(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    redemption = await _redeem(app, s)
    async with staff_client(app, s, "staff-y") as http:
        response = await post_form(
            http, f"{REWARDS}/{redemption.reward_id}", page=REWARDS, price="1", stock="1"
        )
        assert response.status_code == 404
    [reward] = await _rewards(app)
    assert (reward.price, reward.stock) == (10, 1)


async def test_fulfil_by_pickup_code(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    redemption = await _redeem(app, s)
    async with staff_client(app, s, "staff-x") as http:
        unknown = await post_form(http, f"{REWARDS}/fulfil", page=REWARDS, pickup_code="ZZZZZZ")
        assert t("timebank.pickup_unknown") in (await http.get(unknown.headers["location"])).text
        typed = redemption.pickup_code.lower()[:3] + " " + redemption.pickup_code.lower()[3:]
        done = await post_form(http, f"{REWARDS}/fulfil", page=REWARDS, pickup_code=typed)
        page = (await http.get(done.headers["location"])).text
        assert t("dacts.flash.fulfilled", code=redemption.pickup_code) in page
        again = await post_form(
            http, f"{REWARDS}/fulfil", page=REWARDS, pickup_code=redemption.pickup_code
        )
        assert t("timebank.redemption_not_open") in (await http.get(again.headers["location"])).text
    assert (await _redemption(app, redemption.id)).status == "fulfilled"


async def test_only_the_providing_organization_fulfils(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    redemption = await _redeem(app, s, provider=s.org_a)
    async with staff_client(app, s, "org-b") as http:
        page = (await http.get(REWARDS)).text
        assert t("dacts.rewards.pickup_title") in page and "环保袋" not in page
        refused = await post_form(
            http, f"{REWARDS}/fulfil", page=REWARDS, pickup_code=redemption.pickup_code
        )
        assert t("timebank.not_allowed") in (await http.get(refused.headers["location"])).text
    assert (await _redemption(app, redemption.id)).status == "issued"
    async with staff_client(app, s, "org-a") as http:
        await post_form(http, f"{REWARDS}/fulfil", page=REWARDS, pickup_code=redemption.pickup_code)
    assert (await _redemption(app, redemption.id)).status == "fulfilled"


async def test_cancel_redemption_gives_points_and_stock_back(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    redemption = await _redeem(app, s)
    user = s.residents[0]
    assert await _balance(app, user) == 10
    page_url = f"/staff/residents/{user}"
    async with staff_client(app, s, "staff-x") as http:
        page = (await http.get(page_url)).text
        assert redemption.pickup_code not in page  # the resident's voucher stays private
        url = f"{page_url}/redemptions/{redemption.id}/cancel"
        done = await post_form(http, url, page=page_url, reason="居民不要了")
        assert (
            t("dacts.flash.redemption_cancelled") in (await http.get(done.headers["location"])).text
        )
    assert await _balance(app, user) == 20
    assert (await _redemption(app, redemption.id)).status == "cancelled"
    assert (await _rewards(app))[0].stock == 2


async def test_adjustment_needs_a_reason_and_posts_once(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    user = s.residents[1]
    page_url = f"/staff/residents/{user}"
    async with staff_client(app, s, "staff-x") as http:
        page = (await http.get(page_url)).text
        key = re.search(r'name="key" value="([^"]+)"', page)
        assert key
        refused = await post_form(http, f"{page_url}/adjust", page=page_url, amount="5", reason=" ")
        assert refused.status_code == 400
        assert t("dacts.error.reason_required") in refused.text
        assert await _balance(app, user) == 0
        fields = {"amount": "+5", "reason": "补记上月活动", "key": key.group(1)}
        first = await post_form(http, f"{page_url}/adjust", page=page_url, **fields)
        second = await post_form(http, f"{page_url}/adjust", page=page_url, **fields)  # twice
        assert first.status_code == second.status_code == 303
        page = (await http.get(page_url)).text
        assert "补记上月活动" in page
    assert await _balance(app, user) == 5
    async with app.state.runtime.factory() as session:
        adjustments = list(
            await session.scalars(
                select(LedgerTransaction).where(LedgerTransaction.kind == "adjustment")
            )
        )
        audit = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "timebank.adjustment"))
        )
    assert [a.reason for a in adjustments] == ["补记上月活动"]
    assert adjustments[0].actor.startswith("staff:")
    assert [a.detail["reason"] for a in audit] == ["补记上月活动"]


async def test_resident_pages_are_staff_only_and_scoped(env: tuple[FastAPI, Seed]) -> None:
    app, s = env
    async with staff_client(app, s, "staff-y") as http:
        assert (await http.get(f"/staff/residents/{s.residents[0]}")).status_code == 404
        response = await post_form(
            http,
            f"/staff/residents/{s.residents[0]}/adjust",
            page=REWARDS,
            amount="100",
            reason="x",
            key="abcdefgh12",
        )
        assert response.status_code == 404
        assert (await http.get(f"/staff/residents/{s.residents[3]}")).status_code == 200
    async with staff_client(app, s, "org-a") as http:
        assert (await http.get(f"/staff/residents/{s.residents[0]}")).status_code == 403
    assert await _balance(app, s.residents[0]) == 0


async def test_certificate_issued_and_downloaded_by_staff_and_its_owner_only(
    env: tuple[FastAPI, Seed],
) -> None:
    app, s = env
    activity_id = await make_activity(app, s)
    user = s.residents[0]
    await sign_up_all(app, activity_id, [user])
    s.clock.advance(days=3, hours=3)
    org = Actor("org", str(s.org_a))
    signup = await signup_of(app, activity_id, user)
    async with transaction(app.state.runtime.factory) as session:  # one action each, as the
        await confirm_attendance(session, signup_id=signup.id, org_id=s.org_a, actor=org)
    async with transaction(app.state.runtime.factory) as session:  # dashboard does
        await finish_activity(session, activity_id=activity_id, org_id=s.org_a, actor=org)
    page_url = f"/staff/residents/{user}"
    async with staff_client(app, s, "staff-x") as http:
        no_org = await post_form(http, f"{page_url}/certificates", page=page_url, org_only="1")
        assert no_org.status_code == 400 and t("dacts.error.choose_org") in no_org.text
        issued = await post_form(
            http,
            f"{page_url}/certificates",
            page=page_url,
            issuer_org_id=str(s.org_a),
            holder_name="张三丰",
            org_only="1",
        )
        assert issued.status_code == 303, re.findall(r"<li>(.*?)</li>", issued.text)
        async with app.state.runtime.factory() as session:
            [cert] = list(await session.scalars(select(Certificate)))
        assert cert.hours == 2 and cert.holder_name == "张三丰"
        page = (await http.get(page_url)).text
        assert f"/staff/certificates/{cert.id}.pdf" in page
        pdf = await http.get(f"/staff/certificates/{cert.id}.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf"
    async with staff_client(app, s, "staff-y") as http:
        assert (await http.get(f"/staff/certificates/{cert.id}.pdf")).status_code == 404
    async with resident_client(app, s.visitor(0)) as http:
        mine = await http.get(f"/me/certificates/{cert.id}.pdf")
        assert mine.status_code == 200 and mine.content.startswith(b"%PDF")
    async with resident_client(app, s.visitor(1)) as http:
        other = await http.get(f"/me/certificates/{cert.id}.pdf")
        assert other.status_code == 404 and not other.content.startswith(b"%PDF")
    async with resident_client(app, None) as http:
        assert (await http.get(f"/me/certificates/{cert.id}.pdf")).status_code == 404
