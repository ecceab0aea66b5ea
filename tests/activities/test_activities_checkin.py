"""Check-in and check-out with the rotating code: right, wrong, expired, outside the window."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from community.activities import attended_hours, sign_up
from community.checkin import (
    check_in,
    check_out,
    checkin_code,
    checkin_display,
    checkin_qr_svg,
    checkin_url,
    code_status,
    totp,
)
from community.errors import DomainError
from storage.db import transaction
from tests.activities.world import World, get_activity, published, signups, state

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("unix_time", "code"),
    [
        (59, "287082"),
        (1111111109, "081804"),
        (1111111111, "050471"),
        (1234567890, "005924"),
        (2000000000, "279037"),
        (20000000000, "353130"),
    ],
)
def test_totp_matches_rfc_6238_vectors(unix_time: int, code: str) -> None:
    # RFC 6238 appendix B (SHA-1, 30 s steps), last six of the eight digits.
    assert totp(RFC_SECRET, unix_time // 30) == code


@pytest.mark.parametrize(
    ("checked_in", "checked_out", "hours"),
    [
        (-20, 110, 1.5),  # early arrival does not count; 1 h 50 min rounds down
        (0, 120, 2.0),
        (10, 300, 1.5),  # leaving late counts only to the end
        (0, 29, 0.0),
        (130, 140, 0.0),  # after the end
    ],
)
def test_hours_are_clipped_to_the_activity_and_rounded_down(
    checked_in: int, checked_out: int, hours: float
) -> None:
    starts = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    ends = starts + timedelta(hours=2)
    got = attended_hours(
        starts + timedelta(minutes=checked_in),
        starts + timedelta(minutes=checked_out),
        starts,
        ends,
    )
    assert got == hours


async def test_check_in_and_out(world: World) -> None:
    activity_id = await published(world, capacity=1)
    activity = await get_activity(world, activity_id)
    a, waiting, stranger = world.users[:3]
    for user in (a, waiting):
        async with transaction(world.factory) as session:
            await sign_up(session, activity_id=activity_id, user_id=user, notify=False)
    starts = activity.starts_at

    async def refused(key: str, action, **kw) -> None:  # type: ignore[no-untyped-def]
        before = await state(world)
        with pytest.raises(DomainError) as caught:
            async with transaction(world.factory) as session:
                await action(session, activity_id=activity_id, **kw)
        assert caught.value.key == key
        assert await state(world) == before

    world.clock.set(starts - timedelta(minutes=31))
    await refused(
        "activities.error.checkin_not_open", check_in, user_id=a, code=checkin_code(activity)
    )
    world.clock.set(starts - timedelta(minutes=10))
    now = world.clock.current
    await refused("activities.error.bad_code", check_in, user_id=a, code="12345")
    wrong = next(
        f"{n:06d}" for n in range(1_000_000) if code_status(activity, f"{n:06d}", now) == "bad"
    )
    await refused("activities.error.bad_code", check_in, user_id=a, code=wrong)
    old = checkin_code(activity, now - timedelta(minutes=5))
    await refused("activities.error.expired_code", check_in, user_id=a, code=old)
    await refused(
        "activities.error.on_waitlist", check_in, user_id=waiting, code=checkin_code(activity)
    )
    await refused(
        "activities.error.not_signed_up", check_in, user_id=stranger, code=checkin_code(activity)
    )
    await refused(
        "activities.error.not_checked_in", check_out, user_id=a, code=checkin_code(activity)
    )

    previous_step = checkin_code(activity, now - timedelta(seconds=60))  # read out just before
    async with transaction(world.factory) as session:
        done = await check_in(
            session, user_id=a, code=previous_step, number=activity.number, via="qr"
        )
    assert done.at == now and done.activity_id == activity_id
    row = (await signups(world, activity_id))[a]
    assert (row.checked_in_at, row.checkin_method) == (now, "qr")
    await refused(
        "activities.error.already_checked_in", check_in, user_id=a, code=checkin_code(activity)
    )

    world.clock.set(starts + timedelta(hours=1, minutes=50))
    async with transaction(world.factory) as session:
        out = await check_out(
            session, user_id=a, activity_id=activity_id, code=checkin_code(activity)
        )
    assert out.hours == 1.5
    row = (await signups(world, activity_id))[a]
    assert (row.attendance, row.hours) == ("attended", 1.5)
    await refused(
        "activities.error.already_checked_out", check_out, user_id=a, code=checkin_code(activity)
    )
    world.clock.set(activity.ends_at + timedelta(minutes=31))
    await refused(
        "activities.error.checkin_closed", check_in, user_id=waiting, code=checkin_code(activity)
    )


async def test_codes_rotate_and_the_qr_carries_the_link(world: World) -> None:
    activity = await get_activity(world, await published(world))
    now = world.clock.current
    code = checkin_code(activity, now)
    assert len(code) == 6 and code.isdigit()
    assert code_status(activity, code, now) == "ok"
    assert code_status(activity, code, now + timedelta(seconds=60)) == "ok"  # one step later
    assert code_status(activity, code, now + timedelta(seconds=150)) == "expired"
    assert code_status(activity, f"{code[:3]} {code[3:]}", now) == "ok"  # typed with a space
    assert checkin_url(activity, "https://linli.example/", now) == (
        f"https://linli.example/checkin/{activity.number}?c={code}"
    )
    svg = checkin_qr_svg(activity, "https://linli.example", now)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.find("{http://www.w3.org/2000/svg}path") is not None
    display = checkin_display(activity, "https://linli.example")
    assert display.code == code and 1 <= display.seconds_left <= 60
    assert display.opens_at == activity.starts_at - timedelta(minutes=30)
    other = await get_activity(world, await published(world, title="另一个活动"))
    assert other.checkin_secret != activity.checkin_secret  # each activity its own codes
