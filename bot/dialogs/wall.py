"""心愿墙 in chat: browse open wishes, claim one, report it done, and the wisher's 圆梦.

Every button carries the wish id, so the buttons work in any state (a notice pressed days
later); only the proof step keeps state (the next text is the proof note).
"""

from __future__ import annotations

from bot.context import MENU, Ctx, btn
from community import wishes
from community.catalog import t
from community.notify import Button
from community.wishes import Claimer
from storage.models import Request

VERBS = frozenset({wishes.CLAIM, wishes.FULFIL, wishes.CONFIRM, wishes.NOT_YET, wishes.WITHDRAW})
VIEW = "wv"  # wv.<request_id>: one wish of the wall, with the claim button
PAGE = 5


async def show_wall(ctx: Ctx) -> None:
    items = await wishes.list_wall(ctx.session, community_id=ctx.user.community_id, limit=PAGE)
    if not items and ctx.user.community_id is not None:
        items = await wishes.list_wall(ctx.session, limit=PAGE)  # then the whole street's
    ctx.goto("menu")
    if not items:
        ctx.say_key("wish.wall_empty", btn("bot.back", MENU))
        return
    lines = [t("wish.wall_title")]
    buttons = []
    for index, item in enumerate(items, start=1):
        lines.append(
            t(
                "wish.wall_item",
                index=index,
                number=item.number,
                category=item.category_name,
                community=item.community,
                text=item.text,
            )
        )
        buttons.append(Button(t("wish.btn_view", index=index), f"{VIEW}.{item.request_id}"))
    buttons.append(btn("bot.back", MENU))
    ctx.say("\n\n".join(lines), *buttons)


async def on_button(ctx: Ctx, verb: str, arg: str) -> bool:
    """Handle a wish-wall button; False when the payload is not one of ours."""
    if verb == wishes.WALL and not arg:
        await show_wall(ctx)
        return True
    if verb != VIEW and verb not in VERBS:
        return False
    if not arg.isdigit():
        return False
    request_id = int(arg)
    me = Claimer(user_id=ctx.user.id)
    if verb == VIEW:
        await _view(ctx, request_id)
    elif verb == wishes.CLAIM:
        claim = await wishes.claim_wish(ctx.session, request_id, me, ctx.actor)
        request = await ctx.session.get(Request, request_id)
        assert request is not None
        ctx.goto("menu")
        reply = wishes.claim_reply(request, claim, for_org=False)
        ctx.say(reply.text, *reply.buttons)
    elif verb == wishes.FULFIL:
        ctx.goto("wish_proof", request_id=request_id)
        ctx.say_key("wish.ask_proof", btn("bot.cancel", "x"), expects_text=True)
    elif verb == wishes.WITHDRAW:
        await wishes.withdraw_claim(ctx.session, request_id, me, ctx.actor)
        ctx.goto("menu")
        ctx.say_key("wish.withdrawn_ok", wishes.wall_button(), btn("bot.back", MENU))
    elif verb == wishes.CONFIRM:
        await wishes.confirm_wish(ctx.session, request_id, ctx.user.id, ctx.actor)
        request = await ctx.session.get(Request, request_id)
        assert request is not None
        ctx.goto("menu")
        reply = wishes.confirmed_reply(request)
        ctx.say(reply.text, *reply.buttons)
    elif verb == wishes.NOT_YET:
        await wishes.reject_fulfilment(ctx.session, request_id, ctx.user.id, ctx.actor)
        ctx.goto("menu")
        ctx.say_key("wish.not_yet_ok", btn("bot.back", MENU))
    return True


async def _view(ctx: Ctx, request_id: int) -> None:
    found = await wishes.list_wall(ctx.session, request_id=request_id, limit=1)
    ctx.goto("menu")
    if not found:
        ctx.say_key("wish.not_claimable", wishes.wall_button(), btn("bot.back", MENU))
        return
    ctx.say_key(
        "wish.view",
        Button(t("wish.btn_claim"), f"{wishes.CLAIM}.{request_id}"),
        wishes.wall_button(),
        btn("bot.back", MENU),
        number=found[0].number,
        category=found[0].category_name,
        community=found[0].community,
        text=found[0].text,
    )


async def on_proof(ctx: Ctx, text: str | None) -> bool:
    """The text after 「已完成」 is the proof note; False when not in that step."""
    if ctx.state.state != "wish_proof" or not text:
        return False
    request_id = int(ctx.data.get("request_id", 0))
    await wishes.fulfil_wish(
        ctx.session, request_id, Claimer(user_id=ctx.user.id), ctx.actor, note=text
    )
    ctx.goto("menu")
    ctx.say_key("wish.fulfilled_ok", btn("bot.back", MENU))
    return True
