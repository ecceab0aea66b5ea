"""Attendance → points: organizer confirmation, no-shows, finish credits once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from community.activities import (
    confirm_attendance,
    count_no_shows,
    finish_activity,
    list_signups,
    mark_no_show,
    sign_up,
)
from community.checkin import check_in, check_out, checkin_code
from community.errors import DomainError, Forbidden
from storage.db import transaction
from storage.models import LedgerTransaction
from tests.activities.world import (
    ORG_A,
    ORG_B,
    World,
    balance,
    get_activity,
    notices,
    published,
    signups,
    state,
)


async def _setup(world: World, **overrides: object) -> tuple[int, list[int]]:
    activity_id = await published(world, **overrides)
    people = world.users[:4]
    for user in people:
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user, notify=False)
    return activity_id, people


async def test_finish_credits_attended_once_and_records_no_shows(world: World) -> None:
    activity_id, (came, forgot, absent, excused) = await _setup(world)  # 2 points an hour
    activity = await get_activity(world, activity_id)
    rows = await signups(world, activity_id)
    world.clock.set(activity.starts_at - timedelta(minutes=5))
    for user in (came, forgot):
        async with transaction(world.factory) as session:
            await check_in(
                session, user_id=user, activity_id=activity_id, code=checkin_code(activity)
            )
    with pytest.raises(DomainError) as early:
        async with transaction(world.factory) as session:
            await finish_activity(
                session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A
            )
    assert early.value.key == "activities.error.not_started"
    world.clock.set(activity.ends_at)
    async with transaction(world.factory) as session:
        await check_out(session, user_id=came, activity_id=activity_id, code=checkin_code(activity))

    before = await state(world)
    with pytest.raises(DomainError) as open_checkin:  # `forgot` never checked out
        async with transaction(world.factory) as session:
            await finish_activity(
                session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A
            )
    assert open_checkin.value.key == "activities.error.open_checkins"
    assert open_checkin.value.params == {"count": 1}
    with pytest.raises(Forbidden):
        async with transaction(world.factory) as session:
            await confirm_attendance(
                session, signup_id=rows[forgot].id, org_id=world.other_org_id, actor=ORG_B
            )
    with pytest.raises(DomainError) as bad_hours:
        async with transaction(world.factory) as session:
            await confirm_attendance(
                session, signup_id=rows[forgot].id, org_id=world.org_id, actor=ORG_A, hours=3
            )
    assert bad_hours.value.key == "activities.error.bad_hours"
    assert await state(world) == before

    async with transaction(world.factory) as session:
        confirmed = await confirm_attendance(
            session, signup_id=rows[forgot].id, org_id=world.org_id, actor=ORG_A, hours=1.7
        )
        assert (confirmed.hours, confirmed.points) == (1.5, 0)  # credited at finish
        await mark_no_show(session, signup_id=rows[excused].id, org_id=world.org_id, actor=ORG_A)
    with pytest.raises(DomainError) as checked_in:
        async with transaction(world.factory) as session:
            await mark_no_show(session, signup_id=rows[came].id, org_id=world.org_id, actor=ORG_A)
    assert checked_in.value.key == "activities.error.checked_in_not_no_show"

    async with transaction(world.factory) as session:
        result = await finish_activity(
            session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A
        )
    assert (result.attended, result.points, result.no_shows) == (2, 4 + 3, 2)
    assert await balance(world, came) == 4 and await balance(world, forgot) == 3
    assert await balance(world, absent) == 0 and await balance(world, excused) == 0
    rows = await signups(world, activity_id)
    assert rows[absent].attendance == "no_show" and rows[excused].attendance == "no_show"
    assert rows[came].points_txn_id is not None
    for user in (absent, excused):  # recorded and said, never silent
        [told] = [n for n in await notices(world, user) if n.dedupe_key.startswith("noshow:")]
        assert "缺席" in told.text
    [thanks] = [n for n in await notices(world, came) if n.dedupe_key.startswith("points:")]
    assert "4 积分" in thanks.text

    before = await state(world)
    with pytest.raises(DomainError) as again:
        async with transaction(world.factory) as session:
            await finish_activity(
                session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A
            )
    assert again.value.key == "activities.error.already_finished"
    with pytest.raises(DomainError) as again:
        async with transaction(world.factory) as session:
            await confirm_attendance(
                session, signup_id=rows[came].id, org_id=world.org_id, actor=ORG_A, hours=2
            )
    assert again.value.key == "activities.error.points_already_credited"
    assert await state(world) == before
    async with world.factory() as session:
        keys = set(
            await session.scalars(
                select(LedgerTransaction.idempotency_key).where(
                    LedgerTransaction.ref_id == str(activity_id)
                )
            )
        )
    assert keys == {
        f"activity:{activity_id}:signup:{rows[came].id}",
        f"activity:{activity_id}:signup:{rows[forgot].id}",
    }

    # A correction after the finish: the organizer confirms the absent one came after all.
    async with transaction(world.factory) as session:
        late = await confirm_attendance(
            session, signup_id=rows[absent].id, org_id=world.org_id, actor=ORG_A, hours=1
        )
    assert late.points == 2 and await balance(world, absent) == 2
    with pytest.raises(DomainError):
        async with transaction(world.factory) as session:
            await confirm_attendance(
                session, signup_id=rows[absent].id, org_id=world.org_id, actor=ORG_A, hours=1
            )
    assert await balance(world, absent) == 2


async def test_no_shows_are_visible_at_the_next_signup(world: World) -> None:
    first, _ = await _setup(world, points_mode="fixed", points_rate=10)
    activity = await get_activity(world, first)
    world.clock.set(activity.ends_at)
    async with transaction(world.factory) as session:
        result = await finish_activity(session, activity_id=first, org_id=world.org_id, actor=ORG_A)
    assert (result.attended, result.no_shows, result.points) == (0, 4, 0)
    later = await published(
        world,
        starts_at=activity.starts_at + timedelta(days=2),
        ends_at=activity.ends_at + timedelta(days=2),
    )
    user = world.users[0]
    async with transaction(world.factory) as session:
        signed = await sign_up(session, activity_id=later, user_id=user, notify=False)
        assert await count_no_shows(session, user) == 1
    assert signed.no_shows == 1
    async with world.factory() as session:
        [row] = await list_signups(session, activity_id=later, org_id=world.org_id)
        assert (row.user_id, row.no_shows, row.name) == (user, 1, "居民0")
        with pytest.raises(Forbidden):
            await list_signups(session, activity_id=later, org_id=world.other_org_id)


async def test_fixed_points_and_organizer_marked_attendance(world: World) -> None:
    activity_id, people = await _setup(world, points_mode="fixed", points_rate=10)
    activity = await get_activity(world, activity_id)
    rows = await signups(world, activity_id)
    world.clock.set(activity.starts_at + timedelta(minutes=30))
    async with transaction(world.factory) as session:
        marked = await confirm_attendance(
            session, signup_id=rows[people[0]].id, org_id=world.org_id, actor=ORG_A
        )
    assert marked.hours == 2.0  # no check-in times: the whole span
    assert (await signups(world, activity_id))[people[0]].checkin_method == "organizer"
    world.clock.set(activity.ends_at + timedelta(hours=1))
    async with transaction(world.factory) as session:
        await finish_activity(session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A)
    assert await balance(world, people[0]) == 10
    async with world.factory() as session:
        count = await session.scalar(select(func.count()).select_from(LedgerTransaction))
    assert count == 1
