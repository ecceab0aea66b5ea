"""First contact: welcome, privacy notice and consent, the home community, then the activity
notices wanted (a toggle list with 「跳过」, bot/dialogs/interests.py)."""

from __future__ import annotations

from bot.context import BACK, Ctx, btn
from bot.dialogs import interests
from community.catalog import t
from community.notify import Button
from community.residents import give_consent, list_communities, list_streets, set_community


def needs_onboarding(ctx: Ctx) -> bool:
    return ctx.user.consented_at is None or ctx.user.community_id is None


async def start(ctx: Ctx) -> None:
    """Welcome and ask for consent (or continue where onboarding stopped)."""
    if ctx.user.consented_at is None:
        ctx.goto("consent")
        ctx.say_key("bot.welcome")
        if ctx.event.channel == "telegram":
            ctx.say_key("bot.privacy_channel_telegram")
        ctx.say_key("bot.privacy", btn("bot.consent_yes", "ok"), btn("bot.consent_no", "no"))
        return
    await ask_street(ctx)


async def on_consent(ctx: Ctx, payload: str | None) -> None:
    if payload == "ok":
        await give_consent(ctx.session, ctx.user, ctx.event.channel)
        ctx.say_key("bot.consent_thanks")
        await ask_street(ctx)
    elif payload == "no":
        ctx.say_key("bot.consent_declined", btn("bot.consent_yes", "ok"))
    else:
        await start(ctx)


async def ask_street(ctx: Ctx) -> None:
    streets = await list_streets(ctx.session)
    if not streets:
        ctx.goto("consent")
        ctx.say_key("bot.no_places")
        return
    if len(streets) == 1:
        await ask_community(ctx, streets[0].id)
        return
    ctx.goto("pick_street")
    ctx.say_key("bot.pick_street", *(Button(s.name, f"st.{s.id}") for s in streets))


async def ask_community(ctx: Ctx, street_id: int) -> None:
    communities = await list_communities(ctx.session, street_id)
    if not communities:
        await ask_street(ctx)
        return
    ctx.goto("pick_community", street=street_id)
    buttons = [Button(c.name, f"cm.{c.id}") for c in communities]
    ctx.say(t("bot.pick_community"), *buttons, btn("bot.back", BACK))


async def on_street(ctx: Ctx, payload: str | None) -> None:
    if payload and payload.startswith("st."):
        street_id = _int(payload[3:])
        if street_id is not None:
            await ask_community(ctx, street_id)
            return
    await ask_street(ctx)


async def on_community(ctx: Ctx, payload: str | None) -> None:
    if payload == BACK:
        await ask_street(ctx)
        return
    if payload and payload.startswith("cm."):
        community_id = _int(payload[3:])
        community = (
            await set_community(ctx.session, ctx.user, community_id) if community_id else None
        )
        if community is not None:
            ctx.say_key("bot.community_set", community=community.name)
            # Onboarding is over here (needs_onboarding is False): the list's buttons are
            # ordinary stateless buttons, and anything typed instead goes to intake as usual.
            await interests.offer(ctx)
            return
    await ask_community(ctx, int(ctx.data.get("street") or 0))


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None
