"""Organization side in chat: 接单 / 退回 / 处理中 / 已办结 (+ a one-line result note).

Whoever writes from the chat that is an organization's notify target may act for it;
a request of another organization is simply "not found".
"""

from __future__ import annotations

from bot.context import Ctx
from community.audit import Actor
from community.catalog import t
from community.errors import DomainError
from community.orgs import orgs_for_contact
from community.requests import (
    accept_request,
    accepted_reply,
    decline_request,
    get_org_request,
    resolve_request,
    start_request,
)

ORG_VERBS = frozenset({"oa", "od", "op", "or"})


async def _contact_orgs(ctx: Ctx) -> list[int]:
    addresses = [ctx.event.chat_id or "", ctx.event.external_id]
    return [o.id for o in await orgs_for_contact(ctx.session, ctx.event.channel, addresses)]


async def _org_for_request(ctx: Ctx, request_id: int) -> int | None:
    for org_id in await _contact_orgs(ctx):
        try:
            await get_org_request(ctx.session, request_id, org_id)
            return org_id
        except DomainError:
            continue
    return None


async def on_org_button(ctx: Ctx, verb: str, request_id: int) -> None:
    org_id = await _org_for_request(ctx, request_id)
    if org_id is None:
        ctx.say_key("bot.org_not_allowed")
        return
    actor = Actor("org", f"{org_id}/{ctx.event.channel}:{ctx.event.external_id}")
    try:
        if verb == "oa":
            request = await accept_request(ctx.session, request_id, org_id, actor, notify_org=False)
            ctx.replies.append(accepted_reply(request))
        elif verb == "od":
            request = await decline_request(
                ctx.session, request_id, org_id, actor, notify_org=False
            )
            ctx.say_key("notice.org_declined", number=request.number)
        elif verb == "op":
            request = await start_request(ctx.session, request_id, org_id, actor)
            ctx.say_key("notice.org_started", number=request.number)
        elif verb == "or":
            request = await get_org_request(ctx.session, request_id, org_id)
            if request.status not in {"accepted", "in_progress"}:
                raise DomainError("error.bad_transition")
            ctx.goto("org_note", request=request_id, org=org_id)
            ctx.say_key("notice.org_ask_note", number=request.number, expects_text=True)
    except DomainError as exc:
        ctx.say(t(exc.key, **exc.params))


async def on_org_note(ctx: Ctx, text: str | None) -> bool:
    """Handle the note after 已办结; False when this message is not the awaited note."""
    if not text:
        return False
    request_id = int(ctx.data.get("request") or 0)
    org_id = await _org_for_request(ctx, request_id)
    ctx.goto("menu")
    if org_id is None:
        ctx.say_key("bot.org_not_allowed")
        return True
    actor = Actor("org", f"{org_id}/{ctx.event.channel}:{ctx.event.external_id}")
    try:
        request = await resolve_request(ctx.session, request_id, org_id, actor, text)
        ctx.say_key("notice.org_resolved", number=request.number)
    except DomainError as exc:
        ctx.say(t(exc.key, **exc.params))
    return True
