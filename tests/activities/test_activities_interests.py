"""Interests: categories and communities, matching, quiet hours, 退订."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from community.audit import Actor
from community.errors import DomainError
from community.interests import (
    Interests,
    deliver_notice,
    get_interests,
    matches,
    quiet_until,
    resubscribe,
    set_interests,
    set_quiet_hours,
    subscriber_ids,
    unsubscribe_all,
)
from community.notify import Reply
from storage.db import transaction
from tests.activities.world import World, notices


def _me(user_id: int) -> Actor:
    return Actor("resident", str(user_id))


async def test_choices_are_replaced_and_validated(world: World) -> None:
    user = world.users[0]
    async with transaction(world.factory) as session:
        got = await set_interests(
            session, user_id=user, actor=_me(user), categories=["elderly", "culture"]
        )
    assert got.categories == {"elderly", "culture"} and got.community_ids == frozenset()
    assert (got.quiet_start, got.quiet_end, got.paused) == (21 * 60, 8 * 60, False)
    async with transaction(world.factory) as session:
        got = await set_interests(
            session,
            user_id=user,
            actor=_me(user),
            categories=["culture", "health"],
            community_ids=[world.other_community_id],
        )
    assert got.categories == {"culture", "health"}
    assert got.community_ids == {world.other_community_id}
    for kwargs, key in (
        ({"categories": ["gardening"]}, "activities.error.unknown_category"),
        ({"community_ids": [99999]}, "activities.error.unknown_community"),
    ):
        with pytest.raises(DomainError) as refused:
            async with transaction(world.factory) as session:
                await set_interests(session, user_id=user, actor=_me(user), **kwargs)
        assert refused.value.key == key
    async with world.factory() as session:
        assert await get_interests(session, user) == got
    with pytest.raises(DomainError) as refused:
        async with transaction(world.factory) as session:
            await set_quiet_hours(
                session, user_id=user, start_minute=22 * 60, end_minute=24 * 60, actor=_me(user)
            )
    assert refused.value.key == "activities.error.bad_quiet_hours"


async def test_matching_category_and_home_or_followed_community(world: World) -> None:
    home, other = world.community_id, world.other_community_id
    a, b, c, d = world.users[:4]
    far = world.users[5]  # lives in the other community
    async with transaction(world.factory) as session:
        await set_interests(session, user_id=a, actor=_me(a), categories=["elderly"])
        await set_interests(session, user_id=b, actor=_me(b), categories=["culture"])
        await set_interests(
            session, user_id=c, actor=_me(c), categories=["elderly"], community_ids=[other]
        )
        await set_interests(session, user_id=d, actor=_me(d), categories=["elderly"])
        await set_interests(session, user_id=far, actor=_me(far), categories=["elderly"])
        await unsubscribe_all(session, user_id=d, actor=_me(d))  # 退订
    async with world.factory() as session:
        assert await subscriber_ids(session, category="elderly", community_id=home) == [a, c]
        assert await subscriber_ids(session, category="elderly", community_id=other) == [c, far]
        assert await subscriber_ids(session, category="health", community_id=home) == []
        for user, home_id in ((a, home), (b, home), (c, home), (d, home), (far, other)):
            interests = await get_interests(session, user)
            for community in (home, other):
                expected = user in await subscriber_ids(
                    session, category="elderly", community_id=community
                )
                assert matches(interests, home_id, "elderly", community) == expected
    async with transaction(world.factory) as session:
        back = await resubscribe(session, user_id=d, actor=_me(d))
    assert back.paused is False and back.categories == {"elderly"}  # choices were kept
    async with world.factory() as session:
        assert d in await subscriber_ids(session, category="elderly", community_id=home)


def test_quiet_window_wraps_midnight_in_local_time() -> None:
    prefs = Interests(frozenset(), frozenset())  # 21:00–08:00
    at = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # 22:30 local
    assert quiet_until(prefs, at) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 08:00 local
    assert quiet_until(prefs, datetime(2026, 11, 23, 23, 59, tzinfo=UTC)) is not None  # 07:59
    assert quiet_until(prefs, datetime(2026, 11, 24, 0, 0, tzinfo=UTC)) is None  # 08:00
    assert quiet_until(prefs, datetime(2026, 11, 23, 12, 59, tzinfo=UTC)) is None  # 20:59
    daytime = Interests(frozenset(), frozenset(), quiet_start=12 * 60, quiet_end=14 * 60)
    assert quiet_until(daytime, datetime(2026, 11, 23, 4, 30, tzinfo=UTC)) == datetime(
        2026, 11, 23, 6, 0, tzinfo=UTC
    )
    never = Interests(frozenset(), frozenset(), quiet_start=0, quiet_end=0)
    assert quiet_until(never, at) is None


async def test_delivery_honours_pause_and_quiet_hours(world: World) -> None:
    user, paused = world.users[0], world.users[1]
    async with transaction(world.factory) as session:
        await unsubscribe_all(session, user_id=paused, actor=_me(paused))
    world.clock.set(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))  # 22:00 local: quiet
    morning = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    async with transaction(world.factory) as session:
        outcomes = [
            await deliver_notice(session, paused, Reply("x"), dedupe_key="t:paused"),
            await deliver_notice(session, user, Reply("held"), dedupe_key="t:held"),
            await deliver_notice(
                session,
                user,
                Reply("late"),
                dedupe_key="t:late",
                must_arrive_before=morning - timedelta(hours=1),
            ),
            await deliver_notice(
                session,
                user,
                Reply("urgent"),
                dedupe_key="t:urgent",
                must_arrive_before=morning - timedelta(hours=1),
                urgent=True,
            ),
        ]
    assert outcomes == ["paused", "deferred", "late", "sent"]
    rows = {n.dedupe_key: n for n in await notices(world)}
    assert set(rows) == {"t:held", "t:urgent"}
    assert rows["t:held"].next_attempt_at == morning
    assert rows["t:urgent"].next_attempt_at != morning  # due when written, not held
    world.clock.set(morning)
    async with transaction(world.factory) as session:
        assert await deliver_notice(session, user, Reply("day"), dedupe_key="t:day") == "sent"
