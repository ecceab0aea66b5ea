"""The wish wall: claim (alone and jointly), fulfil with proof, confirm, points once, release."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from community import wishes
from community.audit import Actor
from community.errors import DomainError
from community.requests import Intake, submit_request
from community.timebank import user_balance
from community.wishes import Claimer
from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import upgrade
from storage.models import (
    Community,
    Identity,
    LedgerEntry,
    Organization,
    OrgCategory,
    OrgCommunity,
    OutboxMessage,
    Request,
    Street,
    User,
    WishClaim,
    utcnow,
)


@pytest.fixture
async def factory(database_url: str) -> AsyncIterator:
    engine = create_engine(database_url)
    await upgrade(engine)
    yield create_session_factory(engine)
    await engine.dispose()


async def _world(factory) -> dict[str, int]:
    """One community, an organization for children, a wisher and two volunteers."""
    async with transaction(factory) as s:
        street = Street(name="梅园街道")
        s.add(street)
        await s.flush()
        community = Community(name="桂花社区", street_id=street.id)
        org = Organization(name="彩虹桥青少年社工站", notify="telegram:-100")
        s.add_all([community, org])
        await s.flush()
        s.add_all(
            [
                OrgCategory(org_id=org.id, category="children"),
                OrgCommunity(org_id=org.id, community_id=community.id),
            ]
        )
        ids: dict[str, int] = {"community": community.id, "org": org.id}
        for name in ("wisher", "vol1", "vol2", "vol3", "vol4"):
            user = User(display_name=name, community_id=community.id, consented_at=utcnow())
            s.add(user)
            await s.flush()
            s.add(Identity(user_id=user.id, channel="telegram", external_id=name, chat_id=name))
            ids[name] = user.id
        request = await submit_request(
            s,
            user_id=ids["wisher"],
            community_id=community.id,
            intake=Intake(
                text="想给孙子要一个新书包 电话13912345678",
                kind="wish",
                category="children",
                predicted_category="children",
                confidence=0.9,
                contact_phone="13912345678",
                source_channel="telegram",
            ),
            review_threshold=0.35,
            actor=Actor("resident", str(ids["wisher"])),
        )
        ids["wish"] = request.id
    return ids


async def _count(factory, model) -> int:
    async with transaction(factory) as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


async def test_wall_is_masked_and_claim_takes_it_off(factory) -> None:
    ids = await _world(factory)
    async with transaction(factory) as s:
        [item] = await wishes.list_wall(s, community_id=ids["community"])
        assert "13912345678" not in item.text and "书包" in item.text
        await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids["vol1"]), Actor("resident"))
    async with transaction(factory) as s:
        assert await wishes.list_wall(s) == []
        request = await s.get(Request, ids["wish"])
        assert request.status == "accepted" and request.org_id is None
        notices = list(await s.scalars(select(OutboxMessage.text)))
        assert any("已被一位志愿者认领" in n for n in notices)


async def test_refusals_change_nothing(factory) -> None:
    ids = await _world(factory)
    with pytest.raises(DomainError) as own:
        async with transaction(factory) as s:
            await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids["wisher"]), Actor("r"))
    assert own.value.key == "wish.own_wish"
    for vol in ("vol1", "vol2", "vol3"):
        async with transaction(factory) as s:
            await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids[vol]), Actor("r"))
    claims_before = await _count(factory, WishClaim)
    for who, key in (("vol1", "wish.already_claimed"), ("vol4", "wish.enough_claimers")):
        with pytest.raises(DomainError) as err:
            async with transaction(factory) as s:
                await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids[who]), Actor("r"))
        assert err.value.key == key
    with pytest.raises(DomainError) as err:
        async with transaction(factory) as s:
            await wishes.fulfil_wish(
                s, ids["wish"], Claimer(user_id=ids["vol4"]), Actor("r"), note="送到了"
            )
    assert err.value.key == "wish.not_your_claim"
    with pytest.raises(DomainError) as err:
        async with transaction(factory) as s:
            await wishes.confirm_wish(s, ids["wish"], ids["wisher"], Actor("r"))
    assert err.value.key == "wish.nothing_to_confirm"
    assert await _count(factory, WishClaim) == claims_before
    assert await _count(factory, LedgerEntry) == 0


async def test_joint_claim_fulfil_confirm_pays_each_volunteer_once(factory) -> None:
    ids = await _world(factory)
    async with transaction(factory) as s:
        await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids["vol1"]), Actor("r"))
        await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids["vol2"]), Actor("r"))
    with pytest.raises(DomainError):
        async with transaction(factory) as s:
            await wishes.fulfil_wish(
                s, ids["wish"], Claimer(user_id=ids["vol1"]), Actor("r"), note=" "
            )
    async with transaction(factory) as s:
        await wishes.fulfil_wish(
            s, ids["wish"], Claimer(user_id=ids["vol1"]), Actor("r"), note="书包送到家了"
        )
    # "not yet" reopens for both claimers, a second fulfilment then a confirmation
    async with transaction(factory) as s:
        await wishes.reject_fulfilment(s, ids["wish"], ids["wisher"], Actor("r"), "还没收到")
        assert (await s.get(Request, ids["wish"])).status == "in_progress"
    async with transaction(factory) as s:
        await wishes.fulfil_wish(
            s, ids["wish"], Claimer(user_id=ids["vol2"]), Actor("r"), note="今天送到了"
        )
    async with transaction(factory) as s:
        confirmed = await wishes.confirm_wish(s, ids["wish"], ids["wisher"], Actor("r"))
        assert {c.status for c in confirmed} == {"confirmed"}
    with pytest.raises(DomainError):
        async with transaction(factory) as s:
            await wishes.confirm_wish(s, ids["wish"], ids["wisher"], Actor("r"))
    async with transaction(factory) as s:
        share = wishes.WISH_POINTS // 2
        assert await user_balance(s, ids["vol1"]) == share
        assert await user_balance(s, ids["vol2"]) == share
        request = await s.get(Request, ids["wish"])
        assert request.status == "resolved"


async def test_expired_claim_is_reminded_then_released_to_the_wall(factory) -> None:
    ids = await _world(factory)
    async with transaction(factory) as s:
        await wishes.claim_wish(s, ids["wish"], Claimer(org_id=ids["org"]), Actor("org"))
        assert (await s.get(Request, ids["wish"])).org_id == ids["org"]
    now = utcnow()
    async with transaction(factory) as s:
        assert await wishes.sweep_claims(s, now) == (0, 0)  # not due for days
    later = now + timedelta(days=wishes.CLAIM_DAYS) - timedelta(hours=2)
    async with transaction(factory) as s:
        assert await wishes.sweep_claims(s, later) == (1, 0)
    async with transaction(factory) as s:
        assert await wishes.sweep_claims(s, later) == (0, 0)  # reminded once only
    async with transaction(factory) as s:
        assert await wishes.sweep_claims(s, later + timedelta(hours=3)) == (0, 1)
    async with transaction(factory) as s:
        request = await s.get(Request, ids["wish"])
        assert request.status == "routed" and request.org_id is None
        [item] = await wishes.list_wall(s)
        assert item.request_id == ids["wish"]
        texts = list(await s.scalars(select(OutboxMessage.text).order_by(OutboxMessage.id)))
        assert any("明天到期" in x for x in texts) and any("放回心愿墙" in x for x in texts)


async def test_withdraw_returns_the_wish_when_nobody_is_left(factory) -> None:
    ids = await _world(factory)
    async with transaction(factory) as s:
        await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids["vol1"]), Actor("r"))
        await wishes.claim_wish(s, ids["wish"], Claimer(user_id=ids["vol2"]), Actor("r"))
    async with transaction(factory) as s:
        await wishes.withdraw_claim(s, ids["wish"], Claimer(user_id=ids["vol1"]), Actor("r"))
        assert (await s.get(Request, ids["wish"])).status == "accepted"
    async with transaction(factory) as s:
        await wishes.withdraw_claim(s, ids["wish"], Claimer(user_id=ids["vol2"]), Actor("r"))
        assert (await s.get(Request, ids["wish"])).status == "routed"
