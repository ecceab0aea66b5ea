"""The main menu and help: the place every dialog can return to."""

from __future__ import annotations

from bot.context import MENU, Ctx, btn
from community.catalog import t


def menu_buttons() -> tuple:
    """At most 8 entries (an elderly reader's list); 志愿活动 is ``vl`` and 我的积分 ``pb``
    (bot/dialogs/activities.py, points.py)."""
    return (
        btn("bot.menu_wish", "m.wish"),
        btn("bot.menu_need", "m.need"),
        btn("bot.menu_suggestion", "m.sugg"),
        btn("bot.menu_mine", "m.mine"),
        btn("bot.menu_wall", "wl"),
        btn("bot.menu_activities", "vl"),
        btn("bot.menu_points", "pb"),
        btn("bot.menu_help", "m.help"),  # last: the eighth and final button
    )


def show_menu(ctx: Ctx, *, intro_key: str | None = "bot.menu") -> None:
    ctx.goto("menu")
    if intro_key:
        ctx.say_key(intro_key, *menu_buttons())


def show_help(ctx: Ctx) -> None:
    ctx.goto("menu")
    ctx.say(t("bot.help") + "\n" + t("acts.help"), btn("bot.back", MENU))
