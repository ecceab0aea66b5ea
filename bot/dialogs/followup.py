"""我的诉求: list, detail, cancel, and the star rating after a request is resolved."""

from __future__ import annotations

from bot.context import MENU, Ctx, btn
from bot.dialogs.menu import show_menu
from community import lifecycle as lc
from community.catalog import t
from community.errors import DomainError
from community.notify import Button
from community.requests import (
    cancel_request,
    category_name,
    comment_rating,
    rate_request,
    rating_buttons,
)
from community.residents import get_user_request, list_user_requests
from storage.models import Organization


async def show_mine(ctx: Ctx) -> None:
    requests = await list_user_requests(ctx.session, ctx.user.id, limit=8)
    ctx.goto("menu")
    if not requests:
        ctx.say_key("bot.mine_empty", btn("bot.back", MENU))
        return
    lines = [t("bot.mine_header")]
    buttons = []
    for index, request in enumerate(requests, start=1):
        lines.append(
            t(
                "bot.mine_line",
                index=index,
                number=request.number,
                category=category_name(request.category),
                status=t(f"status.{request.status}"),
            )
        )
        buttons.append(Button(request.number, f"rq.{request.id}"))
    buttons.append(btn("bot.back", MENU))
    ctx.say("\n".join(lines), *buttons)


async def show_detail(ctx: Ctx, request_id: int) -> None:
    request = await get_user_request(ctx.session, ctx.user.id, request_id)
    if request is None:
        ctx.say_key("error.not_found")
        await show_mine(ctx)
        return
    org = await ctx.session.get(Organization, request.org_id) if request.org_id else None
    lines = [
        t(
            "bot.detail",
            number=request.number,
            category=category_name(request.category),
            status=t(f"status.{request.status}"),
            org=org.name if org else t("bot.no_org"),
            text=request.text[:200],
        )
    ]
    if request.result_note:
        lines.append(t("bot.detail_result", note=request.result_note))
    if request.rating:
        lines.append(t("bot.detail_rating", stars="★" * request.rating))
    buttons = []
    if lc.can("cancel", request.status):
        buttons.append(btn("bot.cancel_request", f"rc.{request.id}"))
    if request.status == lc.RESOLVED and request.rating is None:
        buttons.append(btn("bot.rate", f"ra.{request.id}"))
    buttons.append(btn("bot.back", "m.mine"))
    ctx.goto("menu")
    ctx.say("\n".join(lines), *buttons)


async def ask_cancel(ctx: Ctx, request_id: int) -> None:
    request = await get_user_request(ctx.session, ctx.user.id, request_id)
    if request is None or not lc.can("cancel", request.status):
        await show_detail(ctx, request_id)
        return
    ctx.goto("menu")
    ctx.say_key(
        "bot.cancel_confirm",
        btn("bot.confirm", f"ry.{request.id}"),
        btn("bot.back", f"rq.{request.id}"),
        number=request.number,
    )


async def do_cancel(ctx: Ctx, request_id: int) -> None:
    try:
        request = await cancel_request(ctx.session, request_id, ctx.user.id, ctx.actor)
    except DomainError as exc:
        ctx.say(t(exc.key))
        await show_detail(ctx, request_id)
        return
    ctx.say_key("bot.cancel_done", number=request.number)
    show_menu(ctx)


async def ask_rating(ctx: Ctx, request_id: int) -> None:
    request = await get_user_request(ctx.session, ctx.user.id, request_id)
    if request is None:
        ctx.say_key("error.not_found")
        show_menu(ctx)
        return
    ctx.goto("menu")
    ctx.say_key(
        "bot.rate_ask", *rating_buttons(request), btn("bot.back", MENU), number=request.number
    )


async def do_rate(ctx: Ctx, request_id: int, stars: int) -> None:
    try:
        await rate_request(ctx.session, request_id, ctx.user.id, stars, ctx.actor)
    except DomainError as exc:
        ctx.say(t(exc.key))
        show_menu(ctx)
        return
    ctx.goto("rate_comment", request=request_id)
    ctx.say_key("bot.rate_thanks", btn("bot.skip", "skip"))


async def on_rate_comment(ctx: Ctx, payload: str | None, text: str | None) -> None:
    if text and payload is None:
        try:
            await comment_rating(
                ctx.session, int(ctx.data.get("request") or 0), ctx.user.id, text, ctx.actor
            )
            ctx.say_key("bot.rate_comment_saved")
        except DomainError as exc:
            ctx.say(t(exc.key))
    show_menu(ctx)
