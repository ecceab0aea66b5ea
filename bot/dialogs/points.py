"""我的积分 in chat: balance and history, 兑换, 我的兑换, family codes and 转赠, 志愿服务证明.

Buttons carry ids (and, where pressing twice must act once, a nonce that becomes the ledger's
idempotency key), so they work in any state. Text steps: the family code (``family_code``)
and the transfer amount (``transfer_amount``, where a bare number is the amount, not a
button). Payloads:

    pb                 balance + recent history
    pr / pr.<id>       the reward catalog / one reward, to confirm
    py.<id>.<nonce>    redeem it (the nonce makes a double press one redemption)
    pm                 我的兑换 (pickup codes)
    pf                 family: members, codes, transfer
    pg / pi            生成家人码 / 输入家人码 (asks for the code)
    pt / pt.<user>     pick the family member / ask the amount for them
    pc.<user>.<amount>.<nonce>   transfer, confirmed
    pz                 志愿服务证明 (list; printing is at the service desk or on the web)
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from bot.context import CANCEL, MENU, Ctx, btn
from community import clock
from community.catalog import t
from community.errors import DomainError, NotFound
from community.notify import Button
from community.timebank import (
    DEFAULT_DAILY_LIMIT,
    InsufficientPoints,
    RewardView,
    create_family_code,
    family_members,
    link_family,
    list_certificates,
    list_rewards,
    redeem_reward,
    transfer_points,
    user_balance,
    user_history,
    user_redemptions,
)
from community.timebank.certificates import format_hours

WORDS = {
    "积分": "pb",
    "我的积分": "pb",
    "兑换": "pr",
    "积分兑换": "pr",
    "我的兑换": "pm",
    "转赠": "pf",
    "家人码": "pf",
    "志愿服务证明": "pz",
    "证明": "pz",
}
FAMILY_STATE = "family_code"
AMOUNT_STATE = "transfer_amount"  # a bare number here is an amount: no numbered buttons
HISTORY = 5
PAGE = 8
_NONCE = re.compile(r"^[0-9a-z]{4,16}$")


async def on_button(ctx: Ctx, verb: str, arg: str) -> bool:
    """Handle a points button; False when the payload is not one of ours."""
    parts = arg.split(".") if arg else []
    ids = [int(p) for p in parts[:2] if p.isdigit()]  # the ids come first, a nonce last
    if verb in {"py", "pc"} and not (parts[-1:] and _NONCE.match(parts[-1])):
        return False
    if not parts and verb in _SCREENS:
        await _SCREENS[verb](ctx)
    elif verb == "pr" and len(parts) == 1 and ids:
        await ask_redeem(ctx, ids[0])
    elif verb == "py" and len(parts) == 2 and parts[0].isdigit():
        await do_redeem(ctx, int(parts[0]), parts[1])
    elif verb == "pt" and len(parts) == 1 and ids:
        await ask_amount(ctx, ids[0])
    elif verb == "pc" and len(parts) == 3 and len(ids) == 2:
        await do_transfer(ctx, ids[0], ids[1], parts[2])
    else:
        return False
    return True


def _refuse(ctx: Ctx, exc: DomainError, *buttons: Button) -> None:
    ctx.goto("menu")
    ctx.say(t(exc.key, **exc.params), *buttons, btn("bot.back", MENU))


async def show_points(ctx: Ctx) -> None:
    balance = await user_balance(ctx.session, ctx.user.id)
    history = await user_history(ctx.session, ctx.user.id, limit=HISTORY)
    lines = [t("acts.points.balance", balance=balance)]
    lines.append(t("acts.points.history" if history else "acts.points.no_history"))
    for line in history:
        day = clock.local(line.when)
        when = t("acts.date", month=day.month, day=day.day)
        amount = f"{line.amount:+d}"
        lines.append(t("acts.points.history_line", date=when, amount=amount, reason=line.reason))
    ctx.goto("menu")
    ctx.say(
        "\n".join(lines),
        btn("acts.btn.redeem", "pr"),
        btn("acts.btn.my_redemptions", "pm"),
        btn("acts.btn.family", "pf"),
        btn("acts.btn.certificates", "pz"),
        btn("bot.back", MENU),
    )


async def show_rewards(ctx: Ctx) -> None:
    rewards = await list_rewards(ctx.session, community_id=ctx.user.community_id)
    balance = await user_balance(ctx.session, ctx.user.id)
    ctx.goto("menu")
    if not rewards:
        ctx.say_key("acts.redeem.empty", btn("acts.btn.points", "pb"), btn("bot.back", MENU))
        return
    lines = [t("acts.redeem.header", balance=balance)]
    for index, reward in enumerate(rewards[:PAGE], start=1):
        provider = t("acts.redeem.provider", name=reward.provider) if reward.provider else ""
        lines.append(
            t(
                "acts.redeem.line",
                index=index,
                title=reward.title,
                price=reward.price,
                stock=reward.stock,
                provider=provider,
            )
        )
    buttons = [
        Button(t("acts.btn.reward", title=r.title[:16], price=r.price), f"pr.{r.id}")
        for r in rewards[:PAGE]
    ]
    ctx.say("\n".join(lines), *buttons, btn("acts.btn.points", "pb"), btn("bot.back", MENU))


async def _reward(ctx: Ctx, reward_id: int) -> RewardView:
    rewards = await list_rewards(
        ctx.session, community_id=ctx.user.community_id, include_empty=True
    )
    found = next((r for r in rewards if r.id == reward_id), None)
    if found is None:
        raise NotFound("timebank.reward_not_found")
    return found


async def ask_redeem(ctx: Ctx, reward_id: int) -> None:
    """Confirm first; a price above the balance is refused here already, with the figures."""
    back = (btn("acts.btn.redeem", "pr"), btn("acts.btn.points", "pb"))
    try:
        reward = await _reward(ctx, reward_id)
        balance = await user_balance(ctx.session, ctx.user.id)
        if reward.stock <= 0:
            raise DomainError("timebank.out_of_stock", title=reward.title)
        if balance < reward.price:
            raise InsufficientPoints(need=reward.price, have=balance)
    except DomainError as exc:
        _refuse(ctx, exc, *back)
        return
    ctx.goto("menu")
    ctx.say_key(
        "acts.redeem.confirm",
        btn("acts.btn.confirm_redeem", f"py.{reward.id}.{secrets.token_hex(4)}"),
        btn("bot.back", "pr"),
        price=reward.price,
        title=reward.title,
        balance=balance,
        left=balance - reward.price,
    )


async def do_redeem(ctx: Ctx, reward_id: int, nonce: str) -> None:
    key = f"chat:redeem:{ctx.user.id}:{nonce}"
    try:
        reward = await _reward(ctx, reward_id)
        redemption = await redeem_reward(
            ctx.session, user_id=ctx.user.id, reward_id=reward_id, key=key, actor=ctx.actor
        )
    except DomainError as exc:
        _refuse(ctx, exc, btn("acts.btn.redeem", "pr"), btn("acts.btn.points", "pb"))
        return
    ctx.goto("menu")
    ctx.say_key(
        "acts.redeem.done",
        btn("acts.btn.my_redemptions", "pm"),
        btn("acts.btn.points", "pb"),
        btn("bot.back", MENU),
        title=reward.title,
        code=redemption.pickup_code,
    )


async def show_redemptions(ctx: Ctx) -> None:
    rows = await user_redemptions(ctx.session, ctx.user.id, limit=PAGE)
    ctx.goto("menu")
    back = (btn("acts.btn.redeem", "pr"), btn("acts.btn.points", "pb"), btn("bot.back", MENU))
    if not rows:
        ctx.say_key("acts.redeem.mine_empty", *back)
        return
    lines = [t("acts.redeem.mine")]
    for index, row in enumerate(rows, start=1):
        status = t(f"acts.redeem.status.{row.status}")
        line = dict(index=index, title=row.title, code=row.pickup_code, status=status)
        lines.append(t("acts.redeem.mine_line", **line))
    ctx.say("\n".join(lines), *back)


async def _members(ctx: Ctx) -> dict[int, str]:
    """Family members' ids → how to call them (their chat name, else 家人N)."""
    found = await family_members(ctx.session, ctx.user.id)
    return {
        uid: (name or t("acts.family.unnamed", index=index))
        for index, (uid, name) in enumerate(found, start=1)
    }


async def show_family(ctx: Ctx) -> None:
    members = await _members(ctx)
    lines = [t("acts.family.intro", limit=DEFAULT_DAILY_LIMIT)]
    if members:
        lines.append(t("acts.family.members", names="、".join(members.values())))
    else:
        lines.append(t("acts.family.none"))
    buttons = [btn("acts.btn.transfer", "pt")] if members else []
    buttons += [btn("acts.btn.new_code", "pg"), btn("acts.btn.enter_code", "pi")]
    ctx.goto("menu")
    ctx.say("\n".join(lines), *buttons, btn("acts.btn.points", "pb"), btn("bot.back", MENU))


async def new_family_code(ctx: Ctx) -> None:
    code = await create_family_code(ctx.session, ctx.user.id)
    ctx.goto("menu")
    ctx.say_key(
        "acts.family.code", btn("acts.btn.family", "pf"), btn("bot.back", MENU), code=code.code
    )


async def ask_family_code(ctx: Ctx) -> None:
    ctx.goto(FAMILY_STATE)
    ctx.say_key("acts.family.ask_code", btn("bot.cancel", CANCEL), expects_text=True)


async def pick_member(ctx: Ctx) -> None:
    members = await _members(ctx)
    if not members:
        await show_family(ctx)
        return
    ctx.goto("menu")
    buttons = [Button(name, f"pt.{uid}") for uid, name in members.items()]
    ctx.say_key("acts.transfer.pick", *buttons, btn("bot.back", "pf"))


async def _member_name(ctx: Ctx, user_id: int) -> str:
    """The member's name, refusing oneself and anyone not linked (before any amount)."""
    if user_id == ctx.user.id:
        raise DomainError("timebank.transfer_self")
    members = await _members(ctx)
    if user_id not in members:
        raise DomainError("timebank.transfer_not_family")
    return members[user_id]


async def ask_amount(ctx: Ctx, to_user_id: int) -> None:
    try:
        name = await _member_name(ctx, to_user_id)
    except DomainError as exc:
        _refuse(ctx, exc, btn("acts.btn.family", "pf"))
        return
    balance = await user_balance(ctx.session, ctx.user.id)
    ctx.goto(AMOUNT_STATE, to=to_user_id, name=name)
    # No buttons: on numbered channels 「回复 1」 would clash with an amount of 1.
    ctx.say_key("acts.transfer.ask_amount", expects_text=True, name=name, balance=balance)


async def do_transfer(ctx: Ctx, to_user_id: int, amount: int, nonce: str) -> None:
    back = (btn("acts.btn.family", "pf"), btn("acts.btn.points", "pb"))
    try:
        name = await _member_name(ctx, to_user_id)
        await transfer_points(
            ctx.session,
            from_user_id=ctx.user.id,
            to_user_id=to_user_id,
            amount=amount,
            key=f"chat:transfer:{ctx.user.id}:{nonce}",
            actor=ctx.actor,
        )
    except DomainError as exc:
        _refuse(ctx, exc, *back)
        return
    balance = await user_balance(ctx.session, ctx.user.id)
    ctx.goto("menu")
    ctx.say_key(
        "acts.transfer.done",
        *back,
        btn("bot.back", MENU),
        name=name,
        amount=amount,
        balance=balance,
    )


async def show_certificates(ctx: Ctx) -> None:
    certificates = await list_certificates(ctx.session, ctx.user.id)
    ctx.goto("menu")
    back = (btn("acts.btn.points", "pb"), btn("bot.back", MENU))
    if not certificates:
        ctx.say_key("acts.cert.empty", *back)
        return
    lines = [t("acts.cert.header")]
    for index, cert in enumerate(certificates[:PAGE], start=1):
        day = clock.local(cert.issued_at)
        when = t("acts.date_year", year=day.year, month=day.month, day=day.day)
        hours = format_hours(cert.hours)
        line = t("acts.cert.line", index=index, number=cert.number, hours=hours, date=when)
        lines.append(line)
        if ctx.event.channel == "web":  # the page's own download (needs its session cookie)
            lines.append(t("acts.cert.link", url=f"/me/certificates/{cert.id}.pdf"))
    lines.append(t("acts.cert.how"))
    ctx.say("\n".join(lines), *back)


async def on_text(ctx: Ctx, text: str) -> bool:
    """The family code or the transfer amount; False when not in one of those steps."""
    state = ctx.state.state
    if state == FAMILY_STATE:
        await _on_family_code(ctx, text)
    elif state == AMOUNT_STATE:
        await _on_amount(ctx, text)
    else:
        return False
    return True


async def _on_family_code(ctx: Ctx, text: str) -> None:
    try:
        link = await link_family(ctx.session, user_id=ctx.user.id, code=text)
    except DomainError as exc:
        if exc.key == "timebank.family_code_invalid":  # a typo: let them type it again
            ctx.say(t(exc.key), btn("bot.cancel", CANCEL), expects_text=True)
        else:
            _refuse(ctx, exc, btn("acts.btn.family", "pf"))
        return
    members = await _members(ctx)
    ctx.goto("menu")
    ctx.say_key(
        "acts.family.linked",
        btn("acts.btn.transfer", "pt"),
        btn("acts.btn.points", "pb"),
        btn("bot.back", MENU),
        name=members.get(link.relative_id, ""),
    )


async def _on_amount(ctx: Ctx, text: str) -> None:
    typed = unicodedata.normalize("NFKC", text).strip().removesuffix("分").removesuffix("积")
    amount = int(typed) if typed.strip().isdigit() else 0
    if amount <= 0:
        ctx.say_key("acts.transfer.not_a_number", expects_text=True)
        return
    balance = await user_balance(ctx.session, ctx.user.id)
    if amount > balance:
        ctx.say(t("timebank.insufficient", need=amount, have=balance), expects_text=True)
        return
    to_user_id, name = int(ctx.data.get("to") or 0), str(ctx.data.get("name") or "")
    ctx.goto("menu")
    ctx.say_key(
        "acts.transfer.confirm",
        btn("acts.btn.confirm_transfer", f"pc.{to_user_id}.{amount}.{secrets.token_hex(4)}"),
        btn("bot.cancel", CANCEL),
        name=name,
        amount=amount,
    )


_SCREENS = {
    "pb": show_points,
    "pr": show_rewards,
    "pm": show_redemptions,
    "pf": show_family,
    "pg": new_family_code,
    "pi": ask_family_code,
    "pt": pick_member,
    "pz": show_certificates,
}
