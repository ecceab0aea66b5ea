"""通知设置 in chat: activity categories (✓ toggles), quiet hours, 退订 and 恢复.

A toggle is saved the moment it is pressed, so every button works in any state and nothing
is lost if the resident walks away mid-list. The same list ends onboarding (with 「跳过」).
Text steps: a category name or 完成 typed while the list is shown, and quiet hours typed as
「22:30-06:30」 (state ``quiet_hours``). Payloads:

    ns                 the summary (categories, my community, quiet hours, 退订 or not)
    nc                 the category list;   nt.<category> toggle it (re-shows the list)
    nt.<category>.o    the same in the onboarding list
    nd / nd.o          完成 (the summary / end of onboarding → the menu)
    nk                 跳过 (onboarding: no categories now → the menu)
    nq                 quiet-hour choices;  nq.<start>.<end> set them (minutes after midnight)
    nu / nu.y          退订: ask / confirmed
    nr                 恢复通知
"""

from __future__ import annotations

import re
import unicodedata

from bot.context import CANCEL, MENU, Ctx, btn
from bot.dialogs.menu import show_menu
from community.activities.common import community_name
from community.catalog import t
from community.interests import (
    Interests,
    get_interests,
    resubscribe,
    set_interests,
    set_quiet_hours,
    unsubscribe_all,
)
from community.notify import Button
from nlp.taxonomy import CATEGORIES

WORDS = {"通知设置": "ns", "退订": "nu", "恢复通知": "nr", "恢复订阅": "nr"}
ONBOARD_STATE = "onboard_interests"
PICK_STATE = "interests_pick"
QUIET_STATE = "quiet_hours"
PRESETS = ((21 * 60, 8 * 60), (22 * 60, 7 * 60))
DONE_WORDS = {"完成", "好了", "选好了"}
SKIP_WORDS = {"跳过", "不用了", "不需要"}
NO_QUIET_WORDS = {"不设免打扰", "不设", "不用免打扰"}
_RANGE = re.compile(
    r"^(\d{1,2})(?:[:：点](\d{2}))?分?\s*[-–—~～到至]\s*(\d{1,2})(?:[:：点](\d{2}))?分?$"
)
_NAMES = {name: key for key, name in CATEGORIES.items()}


async def on_button(ctx: Ctx, verb: str, arg: str) -> bool:
    """Handle a notice-settings button; False when the payload is not one of ours."""
    parts = arg.split(".") if arg else []
    if verb == "ns" and not parts:
        await show_settings(ctx)
    elif verb == "nc" and not parts:
        await show_pick(ctx, onboarding=False)
    elif verb == "nt" and parts and parts[0] in CATEGORIES and parts[1:] in ([], ["o"]):
        await toggle(ctx, parts[0], onboarding=parts[1:] == ["o"])
    elif verb == "nd" and parts in ([], ["o"]):
        await (finish_onboarding(ctx) if parts else show_settings(ctx))
    elif verb == "nk" and not parts:
        await finish_onboarding(ctx, skipped=True)
    elif verb == "nq" and not parts:
        ask_quiet(ctx)
    elif verb == "nq" and len(parts) == 2 and all(p.isdigit() for p in parts):
        await save_quiet(ctx, int(parts[0]), int(parts[1]))
    elif verb == "nu" and not parts:
        ask_unsubscribe(ctx)
    elif verb == "nu" and parts == ["y"]:
        await do_unsubscribe(ctx)
    elif verb == "nr" and not parts:
        await resubscribe(ctx.session, user_id=ctx.user.id, actor=ctx.actor)
        ctx.say_key("acts.notify.resubscribed")
        await show_settings(ctx)
    else:
        return False
    return True


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _names(categories: frozenset[str]) -> str:
    return "、".join(name for key, name in CATEGORIES.items() if key in categories)


async def show_settings(ctx: Ctx) -> None:
    mine = await get_interests(ctx.session, ctx.user.id)
    lines = [t("acts.notify.title")]
    if mine.categories:
        lines.append(t("acts.notify.categories", names=_names(mine.categories)))
    else:
        lines.append(t("acts.notify.no_categories"))
    if ctx.user.community_id is not None:
        name = await community_name(ctx.session, ctx.user.community_id)
        lines.append(t("acts.notify.community", community=name))
    if mine.quiet_start == mine.quiet_end:
        lines.append(t("acts.notify.no_quiet"))
    else:
        start, end = _hhmm(mine.quiet_start), _hhmm(mine.quiet_end)
        lines.append(t("acts.notify.quiet", start=start, end=end))
    lines.append(t("acts.notify.paused" if mine.paused else "acts.notify.on"))
    switch = btn("acts.btn.resubscribe", "nr") if mine.paused else btn("acts.btn.unsubscribe", "nu")
    ctx.goto("menu")
    ctx.say(
        "\n".join(lines),
        btn("acts.btn.pick_categories", "nc"),
        btn("acts.btn.quiet", "nq"),
        switch,
        btn("bot.back", MENU),
    )


async def show_pick(ctx: Ctx, *, onboarding: bool) -> None:
    """The numbered toggle list: ✓ marks what is chosen; 完成 (and 跳过 in onboarding)."""
    chosen = (await get_interests(ctx.session, ctx.user.id)).categories
    suffix = ".o" if onboarding else ""
    buttons = [
        Button(t("acts.btn.chosen", name=name) if key in chosen else name, f"nt.{key}{suffix}")
        for key, name in CATEGORIES.items()
    ]
    buttons.append(btn("acts.btn.done", "nd.o" if onboarding else "nd"))
    if onboarding:
        buttons.append(btn("bot.skip", "nk"))
    ctx.goto(ONBOARD_STATE if onboarding else PICK_STATE)
    ctx.say_key("acts.notify.onboard_pick" if onboarding else "acts.notify.pick", *buttons)


async def offer(ctx: Ctx) -> None:
    """The last step of onboarding: which activity notices, or 跳过."""
    await show_pick(ctx, onboarding=True)


async def toggle(ctx: Ctx, category: str, *, onboarding: bool) -> None:
    mine = await get_interests(ctx.session, ctx.user.id)
    await set_interests(
        ctx.session,
        user_id=ctx.user.id,
        actor=ctx.actor,
        categories=mine.categories ^ {category},
    )
    await show_pick(ctx, onboarding=onboarding)


async def finish_onboarding(ctx: Ctx, *, skipped: bool = False) -> None:
    chosen = (await get_interests(ctx.session, ctx.user.id)).categories
    if chosen and not skipped:
        ctx.say_key("acts.notify.onboard_done", names=_names(chosen))
    else:
        ctx.say_key("acts.notify.onboard_skipped")
    show_menu(ctx)


def _quiet_buttons() -> list[Button]:
    buttons = [
        Button(t("acts.btn.quiet_range", start=_hhmm(s), end=_hhmm(e)), f"nq.{s}.{e}")
        for s, e in PRESETS
    ]
    return [*buttons, btn("acts.btn.quiet_none", "nq.0.0"), btn("bot.back", "ns")]


def ask_quiet(ctx: Ctx) -> None:
    ctx.goto(QUIET_STATE)
    ctx.say_key("acts.notify.quiet_ask", *_quiet_buttons(), expects_text=True)


async def save_quiet(ctx: Ctx, start: int, end: int) -> None:
    mine: Interests = await set_quiet_hours(
        ctx.session, user_id=ctx.user.id, start_minute=start, end_minute=end, actor=ctx.actor
    )
    if mine.quiet_start == mine.quiet_end:
        ctx.say_key("acts.notify.quiet_off")
    else:
        ctx.say_key("acts.notify.quiet_saved", start=_hhmm(start), end=_hhmm(end))
    await show_settings(ctx)


def ask_unsubscribe(ctx: Ctx) -> None:
    ctx.goto("menu")
    ctx.say_key(
        "acts.notify.unsubscribe_ask",
        btn("acts.btn.confirm_unsubscribe", "nu.y"),
        btn("bot.cancel", CANCEL),
    )


async def do_unsubscribe(ctx: Ctx) -> None:
    await unsubscribe_all(ctx.session, user_id=ctx.user.id, actor=ctx.actor)
    ctx.goto("menu")
    ctx.say_key(
        "acts.notify.unsubscribed", btn("acts.btn.resubscribe", "nr"), btn("bot.back", MENU)
    )


async def on_text(ctx: Ctx, text: str) -> bool:
    """Words typed at the list (完成, 跳过, a category's name) or a quiet-hours range."""
    state = ctx.state.state
    word = unicodedata.normalize("NFKC", text).strip()
    if state in {ONBOARD_STATE, PICK_STATE}:
        onboarding = state == ONBOARD_STATE
        if word in DONE_WORDS:
            await (finish_onboarding(ctx) if onboarding else show_settings(ctx))
        elif onboarding and word in SKIP_WORDS:
            await finish_onboarding(ctx, skipped=True)
        elif word in _NAMES:
            await toggle(ctx, _NAMES[word], onboarding=onboarding)
        else:
            return False  # anything else is the resident's own business: intake takes it
        return True
    if state == QUIET_STATE and word in NO_QUIET_WORDS:
        await save_quiet(ctx, 0, 0)
        return True
    if state != QUIET_STATE or not any(ch.isdigit() for ch in word):
        return False
    found = _RANGE.match(word.replace(" ", ""))
    minutes = _minutes(found.groups()) if found else None
    if minutes is None:
        ctx.say_key("acts.notify.quiet_bad", *_quiet_buttons(), expects_text=True)
        return True
    await save_quiet(ctx, *minutes)
    return True


def _minutes(groups: tuple[str | None, ...]) -> tuple[int, int] | None:
    h1, m1, h2, m2 = (int(g) if g else 0 for g in groups)
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        return None
    return h1 * 60 + m1, h2 * 60 + m2
