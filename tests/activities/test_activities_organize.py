"""Organizers: create, publish (broadcast), edit (change notices, version), cancel; refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from community.activities import (
    cancel_activity,
    cancel_signup,
    create_activity,
    edit_activity,
    parse_payload,
    publish_activity,
    sign_up,
)
from community.catalog import has
from community.errors import DomainError, Forbidden
from storage.db import transaction
from storage.models import Broadcast
from tests.activities.world import (
    ORG_A,
    ORG_B,
    START,
    World,
    draft,
    get_activity,
    notices,
    published,
    state,
)


async def test_create_and_publish_broadcasts_to_matching_subscribers(world: World) -> None:
    async with transaction(world.factory) as session:
        activity = await create_activity(
            session, org_id=world.org_id, actor=ORG_A, draft=draft(world)
        )
        number = activity.number
        assert activity.status == "draft" and activity.version == 1
    assert number.startswith("HD2611-")
    async with transaction(world.factory) as session:
        second = await create_activity(
            session, org_id=world.org_id, actor=ORG_A, draft=draft(world)
        )
        assert second.number != number
    async with world.factory() as session:
        assert await session.scalar(select(Broadcast.id)) is None  # drafts announce nothing
    async with transaction(world.factory) as session:
        await publish_activity(session, activity_id=activity.id, org_id=world.org_id, actor=ORG_A)
    published_row = await get_activity(world, activity.id)
    assert published_row.status == "published" and published_row.published_at == START
    async with world.factory() as session:
        [broadcast] = list(await session.scalars(select(Broadcast)))
    assert broadcast.kind == "activity_published" and broadcast.activity_id == activity.id
    assert broadcast.audience["categories"] == ["elderly"]
    assert broadcast.audience["community_ids"] == [world.community_id]
    assert "敬老院陪伴" in broadcast.text and "11月26日（周四）10:00–12:00" in broadcast.text
    payloads = [b["payload"] for b in broadcast.buttons]
    assert payloads == [f"ac.{activity.id}", f"as.{activity.id}"]
    assert [parse_payload(p) for p in payloads] == [("ac", activity.id), ("as", activity.id)]
    with pytest.raises(DomainError) as refused:
        async with transaction(world.factory) as session:
            await publish_activity(
                session, activity_id=activity.id, org_id=world.org_id, actor=ORG_A
            )
    assert refused.value.key == "activities.error.not_draft"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"title": "  "}, "activities.error.bad_title"),
        ({"category": "gardening"}, "activities.error.unknown_category"),
        ({"ends_at": START + timedelta(days=2)}, "activities.error.bad_times"),
        ({"starts_at": START - timedelta(hours=1)}, "activities.error.starts_in_past"),
        ({"signup_deadline": START + timedelta(days=4)}, "activities.error.bad_deadline"),
        ({"capacity": 0}, "activities.error.bad_capacity"),
        ({"points_mode": "daily"}, "activities.error.bad_points"),
    ],
)
async def test_bad_drafts_are_refused(world: World, overrides: dict, key: str) -> None:
    before = await state(world)
    with pytest.raises(DomainError) as refused:
        async with transaction(world.factory) as session:
            await create_activity(
                session, org_id=world.org_id, actor=ORG_A, draft=draft(world, **overrides)
            )
    assert refused.value.key == key and has(key)
    assert await state(world) == before


async def test_an_organization_only_acts_where_and_on_what_is_its_own(world: World) -> None:
    with pytest.raises(Forbidden) as refused:
        async with transaction(world.factory) as session:
            await create_activity(
                session,
                org_id=world.org_id,
                actor=ORG_A,
                draft=draft(world, community_id=world.other_community_id),
            )
    assert refused.value.key == "activities.error.community_not_served"
    activity_id = await published(world)
    before = await state(world)
    for action in (
        lambda s: edit_activity(
            s,
            activity_id=activity_id,
            org_id=world.other_org_id,
            actor=ORG_B,
            changes={"title": "x"},
        ),
        lambda s: cancel_activity(
            s, activity_id=activity_id, org_id=world.other_org_id, actor=ORG_B, reason="x"
        ),
    ):
        with pytest.raises(Forbidden) as refused:
            async with transaction(world.factory) as session:
                await action(session)
        assert refused.value.key == "activities.error.not_your_activity"
    assert await state(world) == before


async def test_edit_tells_signups_and_bumps_the_version(world: World) -> None:
    activity_id = await published(world, capacity=1)
    first, second, gone = world.users[0], world.users[1], world.users[2]
    for user in (first, second, gone):
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user, notify=False)
    async with transaction(world.factory) as session:
        await cancel_signup(session, user_id=gone, activity_id=activity_id)
    async with transaction(world.factory) as session:  # a description is not worth a notice
        result = await edit_activity(
            session,
            activity_id=activity_id,
            org_id=world.org_id,
            actor=ORG_A,
            changes={"description": "请带老花镜。"},
        )
    assert result.changed == ("description",) and result.notified == 0
    assert (await get_activity(world, activity_id)).version == 1
    new_start = START + timedelta(days=4)
    async with transaction(world.factory) as session:
        result = await edit_activity(
            session,
            activity_id=activity_id,
            org_id=world.org_id,
            actor=ORG_A,
            changes={
                "starts_at": new_start,
                "ends_at": new_start + timedelta(hours=3),
                "place": "二楼",
            },
        )
    assert set(result.changed) == {"starts_at", "ends_at", "place"}
    assert result.notified == 2  # the confirmed one and the one waiting, not the withdrawn
    assert (await get_activity(world, activity_id)).version == 2
    for user in (first, second):
        [notice] = [n for n in await notices(world, user) if n.dedupe_key.startswith("changed:")]
        assert "二楼" in notice.text and "11月27日（周五）10:00–13:00" in notice.text
    assert not [n for n in await notices(world, gone) if n.dedupe_key.startswith("changed:")]

    async with transaction(world.factory) as session:  # more seats: the queue moves up
        result = await edit_activity(
            session,
            activity_id=activity_id,
            org_id=world.org_id,
            actor=ORG_A,
            changes={"capacity": 2},
        )
    assert result.promoted == 1
    assert [n for n in await notices(world, second) if n.dedupe_key.startswith("promoted:")]

    before = await state(world)
    for changes, key in (
        ({"capacity": 1}, "activities.error.capacity_below_confirmed"),
        ({"category": "culture"}, "activities.error.field_locked"),
        ({"starts_at": START - timedelta(days=1)}, "activities.error.starts_in_past"),
    ):
        with pytest.raises(DomainError) as refused:
            async with transaction(world.factory) as session:
                await edit_activity(
                    session,
                    activity_id=activity_id,
                    org_id=world.org_id,
                    actor=ORG_A,
                    changes=changes,
                )
        assert refused.value.key == key
    assert await state(world) == before


async def test_cancel_tells_everyone_signed_up_once(world: World) -> None:
    activity_id = await published(world, capacity=1)
    for user in world.users[:2]:
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user, notify=False)
    async with transaction(world.factory) as session:
        await cancel_activity(
            session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A, reason="天气预警"
        )
    activity = await get_activity(world, activity_id)
    assert activity.status == "cancelled" and activity.version == 2
    async with world.factory() as session:  # the announcement stops where it is
        assert list(await session.scalars(select(Broadcast.status))) == ["cancelled"]
    for user in world.users[:2]:
        [notice] = await notices(world, user)
        assert "已取消" in notice.text and "天气预警" in notice.text
    before = await state(world)
    with pytest.raises(DomainError) as refused:
        async with transaction(world.factory) as session:
            await cancel_activity(
                session, activity_id=activity_id, org_id=world.org_id, actor=ORG_A, reason="again"
            )
    assert refused.value.key == "activities.error.cancelled"
    with pytest.raises(DomainError) as refused:
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=world.users[3])
    assert refused.value.key == "activities.error.cancelled"
    assert await state(world) == before
