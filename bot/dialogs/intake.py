"""Intake: free text → proposal (category) → confirm / change → routed; emergencies first."""

from __future__ import annotations

import secrets
from typing import Any

from bot.context import CANCEL, Ctx, btn
from bot.dialogs.menu import menu_buttons, show_menu
from community.catalog import t
from community.keywords import current_classifier
from community.notify import Button
from community.requests import Intake, attach_phone, category_name, submit_request
from community.residents import (
    give_sensitive_consent,
    has_sensitive_consent,
    is_sensitive,
    set_phone,
)
from community.routing import choose_organization
from nlp.classifier import Classification
from nlp.extract import find_phones
from nlp.taxonomy import CATEGORIES

ROUTABLE_KINDS = ("wish", "need", "suggestion", "query")
MENU_KINDS = {"m.wish": "wish", "m.need": "need", "m.sugg": "suggestion"}


def ask_text(ctx: Ctx, kind: str) -> None:
    ctx.goto("compose", kind=kind)
    ctx.say_key(f"bot.ask_{kind}", btn("bot.cancel", CANCEL))


async def on_text(ctx: Ctx, text: str, forced_kind: str | None = None) -> None:
    """Understand a free-text message and propose where it goes."""
    result = current_classifier().classify(text)
    if result.emergency:
        await _emergency(ctx, text, result)
        return
    kind = forced_kind or result.kind
    if kind not in ROUTABLE_KINDS:
        if result.kind == "chitchat" and not result.matched:
            key = "bot.thanks_reply" if _is_thanks(text) else "bot.greeting"
            ctx.say_key(key, *menu_buttons())
            ctx.goto("menu")
            return
        kind = "need"
    draft = {
        "nonce": secrets.token_hex(3),
        "text": text,
        "kind": kind,
        "category": result.category,
        "predicted": result.category,
        "confidence": result.confidence,
        "matched": list(result.matched),
        "candidates": [c for c, _ in result.candidates[:3] if c != "other"],
        "chosen": False,
    }
    await propose(ctx, draft)


def _is_thanks(text: str) -> bool:
    return any(w in text for w in ("谢谢", "感谢", "多谢", "辛苦"))


async def propose(ctx: Ctx, draft: dict[str, Any]) -> None:
    ctx.goto("confirm", draft=draft)
    unsure = not draft["chosen"] and draft["confidence"] < ctx.settings.review_threshold
    if unsure and draft.get("candidates"):
        # Not sure enough to propose one category: let the resident pick among the best
        # candidates, or leave it to staff (a submit as is goes to the review queue).
        nonce = draft["nonce"]
        buttons = [Button(CATEGORIES[c], f"cs.{nonce}.{c}") for c in draft["candidates"][:3]]
        ctx.say_key(
            "bot.unsure",
            *buttons,
            btn("bot.unsure_staff", f"cf.{nonce}"),
            btn("bot.cancel", CANCEL),
        )
        return
    org = None
    if draft["category"] != "other":
        org = await choose_organization(ctx.session, draft["category"], ctx.user.community_id)
    confident = draft["chosen"] or draft["confidence"] >= ctx.settings.review_threshold
    # Remembered for the confirmation message (saves a look-up when routing agrees).
    draft["org"] = [org.id, org.name] if org is not None else None
    routing = (
        t("bot.proposal_routing_org", org=org.name)
        if org is not None and confident
        else t("bot.proposal_routing_staff")
    )
    nonce = draft["nonce"]
    ctx.say_key(
        "bot.proposal",
        btn("bot.confirm", f"cf.{nonce}"),
        btn("bot.change_category", f"cc.{nonce}"),
        btn("bot.cancel", CANCEL),
        category=category_name(draft["category"]),
        kind=t(f"kind.{draft['kind']}"),
        routing=routing,
    )


async def on_confirm_step(ctx: Ctx, payload: str | None, text: str | None) -> None:
    draft = ctx.data.get("draft") or {}
    nonce = draft.get("nonce")
    verb, _, rest = (payload or "").partition(".")
    arg_nonce, _, arg = rest.partition(".")
    if payload and arg_nonce != nonce:
        raise StaleButton
    if verb == "cf":
        if is_sensitive(draft["category"]) and not await has_sensitive_consent(
            ctx.session, ctx.user
        ):
            ctx.say_key(
                "bot.sensitive_consent",
                btn("bot.sensitive_agree", f"sc.{nonce}"),
                btn("bot.cancel", CANCEL),
            )
            return
        await _submit(ctx, draft)
    elif verb == "sc":
        await give_sensitive_consent(ctx.session, ctx.user, ctx.event.channel)
        await _submit(ctx, draft)
    elif verb == "cc":
        _ask_category(ctx, draft, full=False)
    elif verb == "ca":
        _ask_category(ctx, draft, full=True)
    elif verb == "cs" and arg in CATEGORIES:
        draft = {**draft, "category": arg, "chosen": True}
        await propose(ctx, draft)
    elif text:
        # A new message replaces the draft: the resident has said something else.
        await on_text(ctx, text)
    else:
        await propose(ctx, draft)


def _ask_category(ctx: Ctx, draft: dict[str, Any], *, full: bool) -> None:
    nonce = draft["nonce"]
    ctx.goto("confirm", draft=draft)
    shown = list(CATEGORIES) if full else [c for c in draft.get("candidates", [])]
    shown = [c for c in shown if c != draft["category"] or full][: 13 if full else 3]
    buttons = [Button(CATEGORIES[c], f"cs.{nonce}.{c}") for c in shown]
    if not full:
        buttons.append(btn("bot.more_categories", f"ca.{nonce}"))
    buttons.append(btn("bot.back", f"cf_back.{nonce}"))
    ctx.say(t("bot.pick_category"), *buttons)


async def _submit(ctx: Ctx, draft: dict[str, Any]) -> None:
    phones = find_phones(draft["text"])
    phone = phones[0].text if phones else ctx.user.phone
    request = await submit_request(
        ctx.session,
        user_id=ctx.user.id,
        community_id=ctx.user.community_id,
        intake=Intake(
            text=draft["text"],
            kind=draft["kind"],
            category=draft["category"],
            predicted_category=draft["predicted"],
            confidence=float(draft["confidence"]),
            matched=tuple(draft["matched"]),
            category_chosen_by_person=bool(draft["chosen"]),
            contact_phone=phone,
            source_channel=ctx.event.channel,
        ),
        review_threshold=ctx.settings.review_threshold,
        actor=ctx.actor,
    )
    await _announce(ctx, request, draft.get("org"))
    if phone is None and draft["kind"] != "suggestion":
        ctx.goto("ask_phone", request=request.id)
        ctx.say_key("bot.ask_phone", btn("bot.skip", "skip"))
    else:
        show_menu(ctx)


async def _announce(ctx: Ctx, request: Any, preview: list[Any] | None) -> None:
    from storage.models import Organization

    name = None
    if request.org_id is not None:
        if preview and preview[0] == request.org_id:
            name = preview[1]
        else:
            org = await ctx.session.get(Organization, request.org_id)
            name = org.name if org else None
    status = t("bot.submitted_routed", org=name) if name else t("bot.submitted_review")
    ctx.say_key("bot.submitted", number=request.number, status=status)


async def on_phone(ctx: Ctx, payload: str | None, text: str | None) -> None:
    if payload == "skip" or not text:
        show_menu(ctx)
        return
    phones = find_phones(text)
    if not phones:
        if any(not (ch.isdigit() or ch in " -+()") for ch in text):
            # Not a number attempt but something new to say: skip the phone, listen.
            await on_text(ctx, text)
            return
        ctx.say_key("bot.phone_invalid", btn("bot.skip", "skip"))
        return
    await set_phone(ctx.session, ctx.user, phones[0].text)
    await attach_phone(
        ctx.session, int(ctx.data.get("request") or 0), ctx.user.id, phones[0].text, ctx.actor
    )
    ctx.say_key("bot.phone_saved")
    show_menu(ctx)


async def _emergency(ctx: Ctx, text: str, result: Classification) -> None:
    """Numbers first, then record the request and alert the duty staff."""
    numbers = tuple(result.emergency_services) or ("110",)
    advice = "\n".join(t(f"bot.emergency_advice_{n}") for n in numbers)
    ctx.say_key("bot.emergency_numbers", numbers=" / ".join(numbers), advice=advice)
    phones = find_phones(text)
    request = await submit_request(
        ctx.session,
        user_id=ctx.user.id,
        community_id=ctx.user.community_id,
        intake=Intake(
            text=text,
            kind="need",
            category=result.category,
            predicted_category=result.category,
            confidence=result.confidence,
            matched=tuple(result.matched),
            emergency=True,
            emergency_numbers=numbers,
            contact_phone=phones[0].text if phones else ctx.user.phone,
            source_channel=ctx.event.channel,
        ),
        review_threshold=ctx.settings.review_threshold,
        actor=ctx.actor,
    )
    ctx.say_key("bot.emergency_recorded", number=request.number)
    show_menu(ctx)


class StaleButton(Exception):
    """A button from an earlier conversation step was pressed."""
