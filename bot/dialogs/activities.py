"""志愿活动 in chat: browse, details, sign up / cancel, 我的活动, 签到 / 签退 with the code.

Every button carries ids only, so it works in any state (a notice pressed days later);
the one text step is the check-in code (state ``checkin_code``). Payloads:

    ac.<id>  details      as.<id>  sign up      ax.<id>  cancel (asks first)      am  我的活动
             (the domain's own, community.activities.common; notices carry them too)
    vl       upcoming activities of my community (near me; else the other communities')
    vw       this week, every community
    vc       pick a category;  vc.<category>  upcoming activities of that category
    vy.<id>  cancel my sign-up (confirmed)
    vi / vo  签到 / 签退: ask for the organizer's 6-digit code
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from bot.context import CANCEL, MENU, Ctx, btn
from community import clock
from community.activities import (
    MyActivity,
    activity_details,
    cancel_signup,
    details_payload,
    list_upcoming,
    my_activities,
    parse_payload,
    sign_up,
)
from community.activities import common as c
from community.catalog import t
from community.checkin import WINDOW_MARGIN, check_in, check_out, code_status
from community.errors import DomainError
from community.notify import Button
from community.timebank.certificates import format_hours
from nlp.taxonomy import CATEGORIES

WORDS = {
    "活动": "vl",
    "志愿活动": "vl",
    "找活动": "vl",
    "报名": "vl",
    "我的活动": c.PAYLOAD_MINE,
    "签到": "vi",
    "签退": "vo",
}
CODE_STATE = "checkin_code"
PAGE = 6
RETRY_KEYS = frozenset({"activities.error.bad_code", "activities.error.expired_code"})
_CODE = re.compile(r"\d{6}")


async def on_button(ctx: Ctx, verb: str, arg: str) -> bool:
    """Handle an activity button; False when the payload is not one of ours."""
    if verb in {"vl", "vw"} and not arg:
        await show_list(ctx, verb)
    elif verb == "vc" and not arg:
        await pick_category(ctx)
    elif verb == "vc" and arg in CATEGORIES:
        await show_list(ctx, verb, arg)
    elif verb in {"vi", "vo"} and not arg:
        await ask_code(ctx, checkout=verb == "vo")
    elif verb == "vy" and arg.isdigit():
        await do_cancel(ctx, int(arg))
    else:
        parsed = parse_payload(f"{verb}.{arg}" if arg else verb)
        if parsed is None:
            return False
        action, activity_id = parsed
        if activity_id is None:
            await show_mine(ctx)
        elif action == c.PAYLOAD_DETAILS:
            await show_details(ctx, activity_id)
        elif action == c.PAYLOAD_SIGNUP:
            await do_sign_up(ctx, activity_id)
        else:
            await ask_cancel(ctx, activity_id)
    return True


def _short(title: str, limit: int = 16) -> str:
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _nav(current: str) -> list[Button]:
    """The ways on from a list: the other lists, 我的活动, back to the menu."""
    options = [("vl", "acts.btn.near"), ("vw", "acts.btn.week"), ("vc", "acts.btn.by_category")]
    buttons = [btn(key, payload) for payload, key in options if payload != current]
    return [*buttons, c.mine_button(), btn("bot.back", MENU)]


async def show_list(ctx: Ctx, kind: str, category: str | None = None) -> None:
    """A numbered list of upcoming activities, one details button per activity."""
    session = ctx.session
    if kind == "vl":
        title = t("acts.list.near")
        cards = await list_upcoming(session, community_id=ctx.user.community_id, limit=PAGE)
        if not cards:  # nothing at home: the other communities' rather than nothing
            title, cards = t("acts.list.near_elsewhere"), await list_upcoming(session, limit=PAGE)
    elif kind == "vw":
        title = t("acts.list.week")
        cards = await list_upcoming(session, this_week=True, limit=PAGE)
    else:
        title = t("acts.list.category", category=c.category_name(category or ""))
        cards = await list_upcoming(session, category=category, limit=PAGE)
    ctx.goto("menu")
    nav = _nav(kind)
    if not cards:
        ctx.say_key("acts.list.empty", btn("acts.btn.notify", "ns"), *nav)
        return
    lines = [title]
    for index, card in enumerate(cards, start=1):
        lines.append(
            t(
                "acts.list.line",
                index=index,
                title=card.title,
                when=card.when,
                place=card.place,
                community=card.community,
                seats=c.seats_text(card),
            )
        )
    buttons = [Button(_short(card.title), details_payload(card.id)) for card in cards]
    ctx.say("\n".join(lines), *buttons, *nav)


async def pick_category(ctx: Ctx) -> None:
    """Only the categories that have an upcoming activity: no button leads to an empty list."""
    present = {card.category for card in await list_upcoming(ctx.session, limit=200)}
    ctx.goto("menu")
    buttons = [Button(name, f"vc.{key}") for key, name in CATEGORIES.items() if key in present]
    if not buttons:
        ctx.say_key("acts.list.empty", btn("acts.btn.notify", "ns"), *_nav("vc"))
        return
    ctx.say_key("acts.list.pick_category", *buttons, btn("bot.back", "vl"))


async def show_details(ctx: Ctx, activity_id: int) -> None:
    details = await activity_details(ctx.session, activity_id, user_id=ctx.user.id)
    card = details.card
    lines = [
        t(
            "acts.detail.body",
            title=card.title,
            when=card.when,
            place=card.place,
            community=card.community,
            org=details.organization,
            category=c.category_name(card.category),
            seats=c.seats_text(card),
            points=c.points_text(card.points_mode, card.points_rate),
        )
    ]
    if details.description:
        lines.append(t("acts.detail.description", text=details.description[:300]))
    buttons = []
    if card.status != c.PUBLISHED:
        lines.append(t("acts.detail.status", status=t(f"activities.status.{card.status}")))
    elif details.my_status == c.CONFIRMED:
        lines.append(t("acts.detail.confirmed"))
    elif details.my_status == c.WAITLIST:
        lines.append(t("acts.detail.waitlist", position=details.my_position))
    if card.status == c.PUBLISHED and card.starts_at > clock.now():
        active = details.my_status in c.ACTIVE_SIGNUP
        buttons.append(c.cancel_button(card.id) if active else c.signup_button(card.id))
    ctx.goto("menu")
    ctx.say("\n".join(lines), *buttons, c.mine_button(), btn("bot.back", "vl"))


def _refuse(ctx: Ctx, exc: DomainError, *buttons: Button) -> None:
    """A rule said no: its sentence, and buttons that lead on (never a dead end)."""
    ctx.goto("menu")
    ctx.say(t(exc.key, **exc.params), *buttons, btn("bot.back", MENU))


async def do_sign_up(ctx: Ctx, activity_id: int) -> None:
    try:
        result = await sign_up(
            ctx.session,
            activity_id=activity_id,
            user_id=ctx.user.id,
            actor=ctx.actor,
            notify=False,  # answered right here
        )
    except DomainError as exc:
        _refuse(ctx, exc, Button(t("activities.button.details"), details_payload(activity_id)))
        return
    card = (await activity_details(ctx.session, activity_id)).card
    ctx.goto("menu")
    if result.status == c.WAITLIST:
        text = t("activities.notice.waitlisted", title=card.title, position=result.position)
    else:
        text = t("acts.signup.confirmed", title=card.title, when=card.when, place=card.place)
    ctx.say(text, c.cancel_button(activity_id), c.mine_button(), btn("bot.back", MENU))


async def ask_cancel(ctx: Ctx, activity_id: int) -> None:
    details = await activity_details(ctx.session, activity_id, user_id=ctx.user.id)
    if details.my_status not in c.ACTIVE_SIGNUP:
        raise DomainError("activities.error.not_signed_up")
    ctx.goto("menu")
    ctx.say_key(
        "acts.signup.confirm_cancel",
        btn("acts.btn.confirm_cancel", f"vy.{activity_id}"),
        btn("bot.back", details_payload(activity_id)),
        title=details.card.title,
    )


async def do_cancel(ctx: Ctx, activity_id: int) -> None:
    card = (await activity_details(ctx.session, activity_id)).card
    try:
        await cancel_signup(
            ctx.session, user_id=ctx.user.id, activity_id=activity_id, actor=ctx.actor
        )
    except DomainError as exc:
        _refuse(ctx, exc, c.mine_button())
        return
    ctx.goto("menu")
    ctx.say_key(
        "acts.signup.cancelled",
        c.mine_button(),
        btn("acts.btn.near", "vl"),
        btn("bot.back", MENU),
        title=card.title,
    )


async def show_mine(ctx: Ctx) -> None:
    """我的活动: one button per line (cancel while that is still possible, else details)."""
    mine = await my_activities(ctx.session, ctx.user.id, limit=PAGE)
    ctx.goto("menu")
    tail = [btn("acts.btn.checkin", "vi"), btn("acts.btn.checkout", "vo")]
    tail += [btn("acts.btn.near", "vl"), btn("bot.back", MENU)]
    if not mine:
        ctx.say_key("acts.mine.empty", *tail[2:])
        return
    now = clock.now()
    lines, buttons = [t("acts.mine.header")], []
    for index, item in enumerate(mine, start=1):
        card = item.card
        done = "acts.mine.checked_out" if item.checked_out_at else "acts.mine.checked_in"
        progress = t(done) if item.checked_in_at else ""
        status = _status_text(item)
        lines.append(
            t("acts.mine.line", index=index, title=card.title, when=card.when, status=status)
            + progress
        )
        cancellable = card.status == c.PUBLISHED and card.starts_at > now
        key, verb = ("acts.btn.cancel_one", "ax") if cancellable else ("acts.btn.view_one", "ac")
        buttons.append(Button(t(key, title=_short(card.title)), f"{verb}.{card.id}"))
    ctx.say("\n".join(lines), *buttons, *tail)


def _status_text(item: MyActivity) -> str:
    if item.card.status != c.PUBLISHED:
        return t(f"activities.status.{item.card.status}")
    return t(f"activities.signup_status.{item.status}", position=item.position)


async def _today(ctx: Ctx) -> list[MyActivity]:
    """The resident's active sign-ups of today (or whose check-in window is open now)."""
    now = clock.now()
    today = clock.local(now).date()
    mine = await my_activities(ctx.session, ctx.user.id, include_past=True, limit=50)
    return [
        m
        for m in mine
        if m.status in c.ACTIVE_SIGNUP
        and m.card.status == c.PUBLISHED
        and (
            clock.local(m.card.starts_at).date() <= today <= clock.local(m.card.ends_at).date()
            or _window_open(m, now)
        )
    ]


async def ask_code(ctx: Ctx, *, checkout: bool) -> None:
    if not await _today(ctx):
        ctx.goto("menu")
        ctx.say_key(
            "acts.checkin.none", c.mine_button(), btn("acts.btn.near", "vl"), btn("bot.back", MENU)
        )
        return
    ctx.goto(CODE_STATE, out=checkout)
    key = "acts.checkin.ask_out" if checkout else "acts.checkin.ask"
    ctx.say_key(key, btn("bot.cancel", CANCEL), expects_text=True)


async def _match(ctx: Ctx, today: list[MyActivity], code: str) -> int:
    """Which of today's activities this code belongs to (each has its own secret).

    No match: with one likely candidate (the one open now, or the only one) the domain
    names the refusal itself (not open yet, wrong code, expired…).
    """
    statuses = []
    for item in today:
        status = code_status(await c.load_activity(ctx.session, item.card.id), code)
        if status == "ok":
            return item.card.id
        statuses.append(status)
    now = clock.now()
    open_now = [m for m in today if _window_open(m, now)]
    likely = open_now or today
    if len(likely) == 1:
        return likely[0].card.id
    expired = "expired" in statuses
    raise DomainError("activities.error.expired_code" if expired else "activities.error.bad_code")


def _window_open(item: MyActivity, now: datetime) -> bool:
    return item.card.starts_at - WINDOW_MARGIN <= now <= item.card.ends_at + WINDOW_MARGIN


async def on_text(ctx: Ctx, text: str) -> bool:
    """The code typed after 签到/签退; False when not in that step."""
    if ctx.state.state != CODE_STATE:
        return False
    checkout = bool(ctx.data.get("out"))
    found = _CODE.search("".join(unicodedata.normalize("NFKC", text).split()))
    if found is None:
        ctx.say_key("acts.checkin.not_a_code", btn("bot.cancel", CANCEL), expects_text=True)
        return True
    today = await _today(ctx)
    if not today:
        await ask_code(ctx, checkout=checkout)
        return True
    code = found.group(0)
    try:
        activity_id = await _match(ctx, today, code)
        action = check_out if checkout else check_in
        result = await action(ctx.session, user_id=ctx.user.id, code=code, activity_id=activity_id)
    except DomainError as exc:
        if exc.key in RETRY_KEYS:  # a typo or an old code: let them type it again
            ctx.say(t(exc.key), btn("bot.cancel", CANCEL), expects_text=True)
        else:
            _refuse(ctx, exc, c.mine_button())
        return True
    ctx.goto("menu")
    if checkout:
        hours = format_hours(result.hours or 0.0)
        ctx.say_key(
            "acts.checkin.out_done",
            c.mine_button(),
            btn("bot.back", MENU),
            title=result.title,
            hours=hours,
        )
    else:
        ctx.say_key(
            "acts.checkin.done",
            c.mine_button(),
            btn("bot.back", MENU),
            title=result.title,
            time=f"{clock.local(result.at):%H:%M}",
        )
    return True
