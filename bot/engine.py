"""The dialog engine: one neutral event in, neutral replies out, one transaction per step.

The conversation state of each person lives in the database (``dialog_states``), so it
survives restarts and is shared by every process. Global words (菜单/返回/取消/帮助) work in
every state, a number picks the matching button of the last question, and anything
unexpected gets a polite answer with a way back — never silence.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.context import BACK, CANCEL, MENU, Ctx, btn
from bot.dialogs import activities, followup, intake, interests, onboarding, org, points, wall
from bot.dialogs.menu import menu_buttons, show_help, show_menu
from bot.events import InEvent
from bot.throttle import Throttle
from community.catalog import t
from community.errors import DomainError
from community.notify import Reply
from community.privacy import erase_user
from community.residents import load_conversation
from linli.settings import Settings
from storage import inbox
from storage.db import transaction
from storage.models import utcnow

log = logging.getLogger(__name__)

MENU_WORDS = {"菜单", "主菜单", "目录", "menu", "/menu", "开始", "/start", "start"}
CANCEL_WORDS = {"取消", "算了", "不要了", "/cancel", "cancel"}
BACK_WORDS = {"返回", "上一步", "/back", "back"}
HELP_WORDS = {"帮助", "怎么用", "/help", "help", "?", "？"}
MINE_WORDS = {"我的诉求", "查进度", "进度"}
WALL_WORDS = {"心愿墙", "认领心愿", "微心愿墙"}
DELETE_WORDS = {"删除我的信息", "注销", "删除信息"}
# 志愿活动, 我的积分, 通知设置: stateless buttons valid in any state, a few text steps, and
# words that act like their buttons (「签到」 is ``vi``). Payload prefixes: each module's docstring.
FEATURES = (activities, points, interests)
FEATURE_WORDS = {**activities.WORDS, **points.WORDS, **interests.WORDS}
NUMBER_ANSWER_STATES = frozenset({points.AMOUNT_STATE})  # 「2」 there means 2 points
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.、。]?\s*$")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


class DialogEngine:
    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self.throttle = Throttle(settings.throttle_per_minute)

    async def handle(
        self, event: InEvent, *, check_throttle: bool = True, inbox_event_id: int | None = None
    ) -> list[Reply]:
        """Run one dialog step; always returns at least one reply for a person's message.

        With ``inbox_event_id`` the stored inbound event is marked done, with the replies,
        in the same transaction as the step: the step's effects and "processed" commit
        together or not at all.
        """
        text = _clean(event.text)
        if text is not None and len(text) > self.settings.max_message_chars:
            return [Reply(t("bot.too_long", limit=self.settings.max_message_chars))]
        key = f"{event.channel}:{event.external_id}"
        if check_throttle and not self.throttle.allow(key):
            return [Reply(t("bot.too_fast"))]
        try:
            async with transaction(self.factory) as session:
                replies = await self._step(session, event, text)
                if inbox_event_id is not None:
                    await inbox.mark_done(session, inbox_event_id, _result(replies))
                return replies
        except Exception:
            # Nothing of this step was committed; what was stored before is intact.
            log.exception("dialog step failed", extra={"channel": event.channel})
            replies = [Reply(t("bot.error"), (btn("bot.back", MENU),))]
            if inbox_event_id is not None:
                engine = self.factory.kw["bind"]
                await inbox.finish_event(engine, inbox_event_id, _result(replies), "dialog")
            return replies

    async def _step(self, session: AsyncSession, event: InEvent, text: str | None) -> list[Reply]:
        identity, user, state = await load_conversation(
            session,
            event.channel,
            event.external_id,
            chat_id=event.chat_id,
            display_name=event.display_name,
        )
        ctx = Ctx(session, self.settings, event, identity, user, state)
        payload = event.payload or self._numbered_choice(ctx, text)
        try:
            await self._dispatch(ctx, payload, text)
        except intake.StaleButton:
            ctx.say_key("bot.stale_button")
            await self._home(ctx)
        except DomainError as exc:
            ctx.say(t(exc.key, **exc.params))
            await self._home(ctx)
        if not ctx.replies and not event.is_group:
            ctx.say_key("bot.not_understood", *_home_buttons(ctx))
        last_buttons = next((r.buttons for r in reversed(ctx.replies) if r.buttons), ())
        state.data = {**state.data, "btns": [b.payload for b in last_buttons]}
        state.updated_at = utcnow()
        return ctx.replies

    def _numbered_choice(self, ctx: Ctx, text: str | None) -> str | None:
        """「回复 1 确认」: a bare number picks that button of the last question."""
        if not text or ctx.state.state in NUMBER_ANSWER_STATES:
            return None
        match = _NUMBER.match(unicodedata.normalize("NFKC", text))
        index = int(match.group(1)) if match else _CN_DIGITS.get(text.strip())
        choices = ctx.state.data.get("btns") or []
        if index is not None and 1 <= index <= len(choices):
            return str(choices[index - 1])
        return None

    async def _home(self, ctx: Ctx) -> None:
        if onboarding.needs_onboarding(ctx):
            await onboarding.start(ctx)
        else:
            show_menu(ctx)

    async def _dispatch(self, ctx: Ctx, payload: str | None, text: str | None) -> None:
        event = ctx.event
        verb, _, arg = (payload or "").partition(".")

        # Organization actions come from an organization's chat, not a resident's dialog.
        if verb in org.ORG_VERBS and arg.isdigit():
            await org.on_org_button(ctx, verb, int(arg))
            return
        if ctx.state.state == "org_note" and payload is None and await org.on_org_note(ctx, text):
            return
        if event.is_group:
            return  # residents talk to the bot in private chats only

        if event.media and not text and payload is None:
            ctx.say_key("bot.media_unsupported", *_home_buttons(ctx))
            return
        word = (text or "").strip().lower() if payload is None else ""

        if onboarding.needs_onboarding(ctx):
            await self._onboard(ctx, payload, word)
            return
        if word in DELETE_WORDS or payload == "del":
            ctx.goto("confirm_delete")
            ctx.say_key(
                "bot.deleted_confirm", btn("bot.delete_yes", "del.yes"), btn("bot.cancel", CANCEL)
            )
            return
        if payload == "del.yes" and ctx.state.state == "confirm_delete":
            await erase_user(ctx.session, ctx.user, ctx.actor)
            ctx.goto("new")
            ctx.say_key("bot.deleted_done")
            return
        if payload in {MENU, BACK} or word in MENU_WORDS or word in BACK_WORDS:
            if payload == BACK or word in BACK_WORDS:
                if ctx.state.state == "confirm":
                    await intake.propose(ctx, ctx.data["draft"])
                    return
            show_menu(ctx)
            return
        if payload == CANCEL or word in CANCEL_WORDS:
            ctx.say_key("bot.cancelled")
            show_menu(ctx)
            return
        if payload == "m.help" or word in HELP_WORDS:
            show_help(ctx)
            return
        if payload == "m.mine" or word in MINE_WORDS:
            await followup.show_mine(ctx)
            return
        if payload in intake.MENU_KINDS:
            intake.ask_text(ctx, intake.MENU_KINDS[payload])
            return
        if await self._request_buttons(ctx, verb, arg):
            return
        if word in WALL_WORDS:
            await wall.show_wall(ctx)
            return
        if payload is not None and await wall.on_button(ctx, verb, arg):
            return
        if payload is None and await wall.on_proof(ctx, text):
            return
        if await self._features(ctx, payload, text, word):
            return
        if event.phone and ctx.state.state == "ask_phone":
            await intake.on_phone(ctx, None, event.phone)
            return

        state = ctx.state.state
        if state == "confirm" and (payload or text):
            await intake.on_confirm_step(ctx, payload, text)
        elif state == "ask_phone":
            await intake.on_phone(ctx, payload, text)
        elif state == "rate_comment":
            await followup.on_rate_comment(ctx, payload, text)
        elif state == "compose" and text:
            await intake.on_text(ctx, text, forced_kind=ctx.data.get("kind"))
        elif payload is not None:
            raise intake.StaleButton
        elif text:
            await intake.on_text(ctx, text)
        else:
            ctx.say_key("bot.not_understood", *menu_buttons())
            ctx.goto("menu")

    async def _onboard(self, ctx: Ctx, payload: str | None, word: str) -> None:
        state = ctx.state.state
        if state == "consent" and payload in {"ok", "no"}:
            await onboarding.on_consent(ctx, payload)
        elif state == "pick_street" and payload:
            await onboarding.on_street(ctx, payload)
        elif state == "pick_community" and payload:
            await onboarding.on_community(ctx, payload)
        elif state in {"pick_street", "pick_community"} and word in BACK_WORDS:
            await onboarding.ask_street(ctx)
        else:
            await onboarding.start(ctx)

    async def _features(self, ctx: Ctx, payload: str | None, text: str | None, word: str) -> bool:
        """Activities, points and notice settings: a button (or its word), then text steps."""
        payload = FEATURE_WORDS.get(word, payload)
        if payload is not None:
            verb, _, arg = payload.partition(".")
            for feature in FEATURES:
                if await feature.on_button(ctx, verb, arg):
                    return True
            return False
        if text:
            for feature in FEATURES:
                if await feature.on_text(ctx, text):
                    return True
        return False

    async def _request_buttons(self, ctx: Ctx, verb: str, arg: str) -> bool:
        """Buttons about one of the resident's own requests (valid in any state)."""
        parts = arg.split(".")
        if verb not in {"rq", "rc", "ry", "ra", "rt"} or not parts[0].isdigit():
            return False
        request_id = int(parts[0])
        if verb == "rq":
            await followup.show_detail(ctx, request_id)
        elif verb == "rc":
            await followup.ask_cancel(ctx, request_id)
        elif verb == "ry":
            await followup.do_cancel(ctx, request_id)
        elif verb == "ra":
            await followup.ask_rating(ctx, request_id)
        elif verb == "rt" and len(parts) == 2 and parts[1].isdigit():
            await followup.do_rate(ctx, request_id, int(parts[1]))
        else:
            return False
        return True


def _result(replies: list[Reply]) -> dict:
    return {"replies": [r.as_dict() for r in replies]}


def _home_buttons(ctx: Ctx) -> tuple:
    return menu_buttons() if not onboarding.needs_onboarding(ctx) else ()


def _clean(text: str | None) -> str | None:
    """Drop control characters; the text is otherwise kept exactly as the person wrote it."""
    if text is None:
        return None
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return text.strip()
