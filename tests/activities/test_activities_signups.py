"""Residents: sign up, waiting list (moved up on a cancel), refusals, lists and 我的活动."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from community.activities import (
    SignupResult,
    activity_details,
    cancel_signup,
    create_activity,
    list_upcoming,
    my_activities,
    publish_activity,
    sign_up,
)
from community.errors import DomainError, Forbidden, NotFound
from storage.db import transaction
from tests.activities.world import ORG_A, START, World, draft, notices, published, signups, state


async def _sign_up(
    world: World, activity_id: int, user_id: int, *, notify: bool = True
) -> SignupResult:
    async with transaction(world.factory) as session:
        return await sign_up(session, activity_id=activity_id, user_id=user_id, notify=notify)


async def test_capacity_then_waiting_list_then_promotion_on_cancel(world: World) -> None:
    activity_id = await published(world, capacity=2)
    a, b, c, d = world.users[:4]
    results = [await _sign_up(world, activity_id, user) for user in (a, b, c, d)]
    assert [(r.status, r.position) for r in results] == [
        ("confirmed", None),
        ("confirmed", None),
        ("waitlist", 1),
        ("waitlist", 2),
    ]
    [confirmation] = await notices(world, a)
    assert confirmation.text.startswith("报名成功") and "ax." in str(confirmation.buttons)
    [waiting] = await notices(world, c)
    assert "候补第 1 位" in waiting.text

    world.clock.advance(minutes=5)
    async with transaction(world.factory) as session:
        cancelled = await cancel_signup(session, user_id=a, activity_id=activity_id)
    assert cancelled.was == "confirmed" and cancelled.promoted_user_ids == (c,)
    rows = await signups(world, activity_id)
    assert rows[a].status == "cancelled" and rows[c].status == "confirmed"
    assert rows[c].promoted_at == world.clock.current and rows[d].status == "waitlist"
    promoted = [n for n in await notices(world, c) if n.dedupe_key.startswith("promoted:")]
    assert len(promoted) == 1 and "候补转为正式报名" in promoted[0].text
    async with world.factory() as session:
        details = await activity_details(session, activity_id, user_id=d)
    assert (details.my_status, details.my_position) == ("waitlist", 1)
    assert (details.card.confirmed, details.card.waiting, details.card.seats_left) == (2, 1, 0)

    # Leaving the waiting list frees no seat; signing up again queues at the end.
    async with transaction(world.factory) as session:
        left = await cancel_signup(session, user_id=d, activity_id=activity_id)
    assert left.was == "waitlist" and left.promoted_user_ids == ()
    again = await _sign_up(world, activity_id, a)
    assert (again.status, again.position) == ("waitlist", 1)


async def test_refusals_change_nothing(world: World) -> None:
    activity_id = await published(world, capacity=1, signup_deadline=START + timedelta(days=1))
    a, b = world.users[:2]
    await _sign_up(world, activity_id, a)
    await _sign_up(world, activity_id, b)
    before = await state(world)

    async def refused(key: str, coro) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(DomainError) as caught:
            async with transaction(world.factory) as session:
                await coro(session)
        assert caught.value.key == key
        assert await state(world) == before

    await refused(
        "activities.error.already_signed_up",
        lambda s: sign_up(s, activity_id=activity_id, user_id=a),
    )
    await refused(
        "activities.error.already_waitlisted",
        lambda s: sign_up(s, activity_id=activity_id, user_id=b),
    )
    mine = (await signups(world, activity_id))[a].id
    await refused(
        "activities.error.not_your_signup",
        lambda s: cancel_signup(s, user_id=b, signup_id=mine),
    )
    await refused(
        "activities.error.not_signed_up",
        lambda s: cancel_signup(s, user_id=world.users[2], activity_id=activity_id),
    )
    with pytest.raises(Forbidden):
        async with transaction(world.factory) as session:
            await cancel_signup(session, user_id=b, signup_id=mine)

    world.clock.advance(days=1, seconds=1)  # past the sign-up deadline
    await refused(
        "activities.error.deadline_passed",
        lambda s: sign_up(s, activity_id=activity_id, user_id=world.users[2]),
    )
    world.clock.advance(days=2)  # past the start
    await refused(
        "activities.error.signup_started",
        lambda s: sign_up(s, activity_id=activity_id, user_id=world.users[2]),
    )
    await refused(
        "activities.error.cancel_started",
        lambda s: cancel_signup(s, user_id=a, activity_id=activity_id),
    )


async def test_drafts_are_invisible_to_residents(world: World) -> None:
    async with transaction(world.factory) as session:
        activity = await create_activity(
            session, org_id=world.org_id, actor=ORG_A, draft=draft(world)
        )
    with pytest.raises(DomainError) as caught:
        await _sign_up(world, activity.id, world.users[0])
    assert caught.value.key == "activities.error.not_found"
    with pytest.raises(NotFound):
        async with world.factory() as session:
            await activity_details(session, activity.id)
    async with world.factory() as session:
        assert await list_upcoming(session) == []


async def test_last_seat_goes_to_exactly_one_of_many_at_once(world: World) -> None:
    activity_id = await published(world, capacity=3)
    results = await asyncio.gather(
        *(_sign_up(world, activity_id, user, notify=False) for user in world.users)
    )
    statuses = sorted(r.status for r in results)
    assert statuses == ["confirmed"] * 3 + ["waitlist"] * 3
    assert sorted(r.position for r in results if r.position) == [1, 2, 3]


async def test_lists_near_me_by_category_this_week_and_mine(world: World) -> None:
    soon = await published(world, title="周三义诊", category="health")
    later = await published(
        world,
        title="下周读书会",
        category="culture",
        starts_at=START + timedelta(days=8),
        ends_at=START + timedelta(days=8, hours=2),
    )
    async with transaction(world.factory) as session:
        other = await create_activity(
            session,
            org_id=world.other_org_id,
            actor=ORG_A,
            draft=draft(world, title="松柏社区清洁", community_id=world.other_community_id),
        )
        await publish_activity(
            session, activity_id=other.id, org_id=world.other_org_id, actor=ORG_A
        )
    async with world.factory() as session:
        near = await list_upcoming(session, community_id=world.community_id)
        week = await list_upcoming(session, this_week=True)
        culture = await list_upcoming(session, category="culture")
    assert [c.id for c in near] == [soon, later]
    assert {c.id for c in week} == {soon, other.id}  # Sunday ends the week; day 8 is next week
    assert [c.title for c in culture] == ["下周读书会"]

    user = world.users[0]
    await _sign_up(world, soon, user)
    await _sign_up(world, later, user)
    async with world.factory() as session:
        mine = await my_activities(session, user)
    assert [(m.card.id, m.status) for m in mine] == [(soon, "confirmed"), (later, "confirmed")]
    world.clock.advance(days=4)  # the first one is over
    async with world.factory() as session:
        assert [m.card.id for m in await my_activities(session, user)] == [later]
        history = await my_activities(session, user, include_past=True)
    assert [m.card.id for m in history] == [later, soon]
