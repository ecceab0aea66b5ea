"""A local fake Telegram Bot API server for tests (platforms.md §1.4).

A real aiogram ``Bot`` talks to it over HTTP through
``AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))``, so tests exercise aiogram's
real serialization and error mapping instead of a mock. Answers follow the Bot API shapes and
error texts closely enough for aiogram to raise its usual exceptions.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import json
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from webhooks.generic.crypto import is_valid_telegram_secret

__all__ = [
    "Call",
    "FakeApiError",
    "FakeTelegram",
    "make_callback_update",
    "make_chat",
    "make_message_update",
]

Handler = Callable[[dict[str, Any], str], Any | Awaitable[Any]]

# Form fields that are plain text even when they look like JSON, numbers or booleans.
_TEXT_FIELDS = frozenset(
    {
        "text",
        "caption",
        "url",
        "secret_token",
        "callback_query_id",
        "inline_message_id",
        "parse_mode",
        "ip_address",
        "data",
        "description",
        "short_description",
        "name",
        "language_code",
        "query",
        "title",
        "file_id",
        "business_connection_id",
        "message_effect_id",
        "action",
    }
)
_INT_FIELDS = frozenset({"offset", "limit", "timeout", "max_connections", "cache_time"})
_INT_RE = re.compile(r"-?[0-9]+", re.ASCII)
_TOKEN_RE = re.compile(r"[0-9]+:[A-Za-z0-9_-]+", re.ASCII)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class FakeApiError(Exception):
    """Raise from a handler to answer ``{"ok": false, ...}`` with this status."""

    def __init__(self, status: int, description: str, **parameters: int) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received; ``params`` have JSON-string fields decoded."""

    method: str
    token: str
    params: dict[str, Any]
    status: int = 200


@dataclass(slots=True)
class _Bucket:
    """Token bucket: ``capacity`` sends at once, refilled at ``rate`` per second."""

    capacity: float
    rate: float
    tokens: float = field(init=False)
    last: float = field(default=-math.inf)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def wait_s(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


def make_chat(chat_id: int | str, first_name: str = "张阿姨") -> dict[str, Any]:
    """A Chat object: positive ids are private chats, -100… supergroups, other negatives groups."""
    if isinstance(chat_id, str):  # "@channelusername"
        return {
            "id": -1001000000001,
            "type": "channel",
            "title": "邻里通知",
            "username": chat_id[1:],
        }
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": first_name}
    kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
    return {"id": chat_id, "type": kind, "title": "邻里测试群"}


def _user(user_id: int, first_name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "zh-hans"}


def _bot_user(bot_id: int) -> dict[str, Any]:
    return {"id": bot_id, "is_bot": True, "first_name": "邻里 Linli", "username": "linli_test_bot"}


def make_message_update(
    update_id: int,
    user_id: int,
    chat_id: int,
    text: str,
    first_name: str = "张阿姨",
    *,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """An Update carrying a text message from a resident (commands get a bot_command entity)."""
    message: dict[str, Any] = {
        "message_id": update_id if message_id is None else message_id,
        "from": _user(user_id, first_name),
        "chat": make_chat(chat_id, first_name),
        "date": int(time.time()) if date is None else date,
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        length = len(command.encode("utf-16-le")) // 2  # entity offsets count UTF-16 units
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"update_id": update_id, "message": message}


def make_callback_update(
    update_id: int,
    user_id: int,
    chat_id: int,
    data: str,
    message_id: int,
    *,
    first_name: str = "张阿姨",
    bot_id: int = 42,
    message_text: str = "请选择：",
) -> dict[str, Any]:
    """An Update for a press on an inline button of a message the bot sent earlier."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"{user_id}{update_id:08d}",
            "from": _user(user_id, first_name),
            "message": {
                "message_id": message_id,
                "from": _bot_user(bot_id),
                "chat": make_chat(chat_id, first_name),
                "date": int(time.time()) - 5,
                "text": message_text,
            },
            "chat_instance": f"-{abs(chat_id)}77",
            "data": data,
        },
    }


def _decode_field(key: str, value: str) -> Any:
    """Undo aiogram's form encoding: nested objects are JSON strings, numbers and bools text."""
    if key in _TEXT_FIELDS:
        return value
    if value in ("true", "false"):
        return value == "true"
    if (key.endswith("_id") or key in _INT_FIELDS) and _INT_RE.fullmatch(value):
        return int(value)
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _read_params(request: web.Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                raw.update(body)
        else:  # form-urlencoded or multipart
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    raw[key] = {"filename": value.filename, "content": value.file.read()}
                else:
                    raw[key] = value
    return {k: _decode_field(k, v) if isinstance(v, str) else v for k, v in raw.items()}


def _visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode and parse_mode.upper() == "HTML":
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    return text


def _check_markup(markup: Any) -> None:
    for row in (markup or {}).get("inline_keyboard", []) if isinstance(markup, dict) else []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise FakeApiError(400, "Bad Request: BUTTON_DATA_INVALID")


class FakeTelegram:
    """Bot API server on 127.0.0.1 with an ephemeral port, recording every call."""

    def __init__(
        self,
        *,
        enforce_limits: bool = False,
        strict_messages: bool = False,
        max_poll_s: float = 1.0,
        per_chat_burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls: list[Call] = []
        # Every message that reached a chat, in order, and when (``clock``): tests and the
        # broadcast bench count duplicates and misses from it.
        self.delivered: list[tuple[int | str, str]] = []
        self.delivered_at: list[float] = []
        self.throttled = 0  # answers 429 sent (forced or by the enforced limits)
        # Off by default: Telegram's pacing (30/s overall, per chat, 20/min per group).
        self.enforce_limits = enforce_limits
        # strict: editing/deleting a message the fake never sent is a 400, as on Telegram.
        self.strict_messages = strict_messages
        self.max_poll_s = max_poll_s
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._per_chat_burst = per_chat_burst
        self.clock = clock  # swap in a fake clock to test pacing deterministically
        self._updates: list[dict[str, Any]] = []
        self._next_message_id: dict[int | str, int] = {}
        self._blocked: set[int | str] = set()
        self._forced_429: list[list[Any]] = []  # [remaining, retry_after, method | None]
        self._chat_buckets: dict[int | str, _Bucket] = {}
        self._group_buckets: dict[int | str, _Bucket] = {}
        self._global_bucket = _Bucket(30, 30)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._handlers: dict[str, tuple[str, Handler]] = {}
        for name, func in {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendChatAction": lambda params, token: True,
        }.items():
            self.set_handler(name, func)

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # wake long-polling getUpdates so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- test controls -----------------------------------------------------------------------
    def set_handler(self, method: str, handler: Handler) -> None:
        """Add or override a method; the handler gets (params, token), returns the result."""
        self._handlers[method.lower()] = (method, handler)  # method names are case-insensitive

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (polling-mode tests)."""
        self._updates.append(update)
        self._notify()

    def block_chat(self, chat_id: int | str) -> None:
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int | str) -> None:
        self._blocked.discard(chat_id)

    def rate_limit(self, retry_after: int = 1, times: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` calls (of ``method``, or any) with 429 retry_after."""
        self._forced_429.append([times, retry_after, method and method.lower()])

    def sent_messages(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Params of successful sendMessage calls (reply_markup decoded), oldest first."""
        return [
            c.params
            for c in self.calls
            if c.method == "sendMessage"
            and c.status == 200
            and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def delivery_counts(self) -> Counter[tuple[int | str, str]]:
        """How often each (chat, text) arrived: > 1 is a duplicate."""
        return Counter(self.delivered)

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5,  # noqa: ASYNC109 - the familiar asyncio.wait_for shape, for tests
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after each call); return its value."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value

    # ---- HTTP plumbing -----------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await _read_params(request)
        status, payload = 200, {"ok": True, "result": None}
        try:
            if not _TOKEN_RE.fullmatch(token):
                raise FakeApiError(401, "Unauthorized")
            if method.lower() not in self._handlers:
                raise FakeApiError(404, "Not Found: method not found")
            method, handler = self._handlers[method.lower()]
            self._inject_failures(method, params)
            result = handler(params, token)
            payload["result"] = await result if inspect.isawaitable(result) else result
        except FakeApiError as exc:
            status = exc.status
            payload = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                payload["parameters"] = exc.parameters
        except Exception as exc:  # a bug in a custom handler: answer like Telegram's 5xx
            status = 500
            payload = {
                "ok": False,
                "error_code": 500,
                "description": f"Internal Server Error: {exc!r}",
            }
        self.calls.append(Call(method, token, params, status))
        self._notify()
        return web.json_response(payload, status=status)

    def _inject_failures(self, method: str, params: dict[str, Any]) -> None:
        for entry in self._forced_429:
            if entry[0] > 0 and entry[2] in (None, method.lower()):
                entry[0] -= 1
                self._raise_429(entry[1])
        chat_id = params.get("chat_id")
        if chat_id is not None and chat_id in self._blocked:
            if isinstance(chat_id, int) and chat_id < 0:
                raise FakeApiError(403, "Forbidden: bot was kicked from the group chat")
            raise FakeApiError(403, "Forbidden: bot was blocked by the user")
        if self.enforce_limits and method.startswith("send") and method != "sendChatAction":
            self._take_send_tokens(chat_id)

    def _raise_429(self, retry_after: int) -> None:
        self.throttled += 1
        raise FakeApiError(
            429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
        )

    def _take_send_tokens(self, chat_id: int | str | None) -> None:
        """Telegram's documented pacing: 1/s per chat (burst), 30/s overall, 20/min per group."""
        now = self.clock()
        buckets = [
            self._global_bucket,
            self._chat_buckets.setdefault(chat_id, _Bucket(self._per_chat_burst, 1.0)),
        ]
        if isinstance(chat_id, int) and chat_id < 0:
            buckets.append(self._group_buckets.setdefault(chat_id, _Bucket(20, 20 / 60)))
        wait = max(b.wait_s(now) for b in buckets)  # check all before taking from any
        if wait > 0:
            self._raise_429(max(1, math.ceil(wait)))
        for bucket in buckets:
            bucket.take()

    # ---- methods -----------------------------------------------------------------------------
    def _get_me(self, params: dict[str, Any], token: str) -> dict[str, Any]:
        return _bot_user(int(token.split(":", 1)[0])) | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _send_message(self, params: dict[str, Any], token: str) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise FakeApiError(400, "Bad Request: chat_id is empty")
        text = _visible_text(str(params.get("text", "")), params.get("parse_mode"))
        if not text.strip():
            raise FakeApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise FakeApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        _check_markup(markup)
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        message = {
            "message_id": message_id,
            "from": _bot_user(int(token.split(":", 1)[0])),
            "chat": make_chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # only inline keyboards are echoed back
        self.messages[chat_id, message_id] = message
        self.delivered.append((chat_id, text))
        self.delivered_at.append(self.clock())
        return message

    def _find_message(self, params: dict[str, Any], token: str, verb: str) -> dict[str, Any]:
        key = (params.get("chat_id"), params.get("message_id"))
        if key in self.messages:
            return self.messages[key]
        if self.strict_messages or None in key:
            raise FakeApiError(400, f"Bad Request: message to {verb} not found")
        message = {
            "message_id": key[1],
            "from": _bot_user(int(token.split(":", 1)[0])),
            "chat": make_chat(key[0]),
            "date": int(time.time()) - 60,
            "text": "…",
        }
        self.messages[key] = message  # type: ignore[index]
        return message

    def _edit(self, params: dict[str, Any], token: str, text: str | None) -> Any:
        markup = params.get("reply_markup")
        _check_markup(markup)
        if "inline_message_id" in params:
            return True
        message = self._find_message(params, token, "edit")
        new_text = message["text"] if text is None else text
        if new_text == message["text"] and markup == message.get("reply_markup"):
            raise FakeApiError(400, _NOT_MODIFIED)
        message["text"] = new_text
        message["edit_date"] = int(time.time())
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _edit_message_text(self, params: dict[str, Any], token: str) -> Any:
        text = _visible_text(str(params.get("text", "")), params.get("parse_mode"))
        if not text.strip():
            raise FakeApiError(400, "Bad Request: message text is empty")
        return self._edit(params, token, text)

    def _edit_message_reply_markup(self, params: dict[str, Any], token: str) -> Any:
        return self._edit(params, token, None)

    def _delete_message(self, params: dict[str, Any], token: str) -> bool:
        self._find_message(params, token, "delete")
        self.messages.pop((params.get("chat_id"), params.get("message_id")), None)
        return True

    def _answer_callback_query(self, params: dict[str, Any], token: str) -> bool:
        if not params.get("callback_query_id"):
            raise FakeApiError(400, "Bad Request: QUERY_ID_INVALID")
        return True

    def _set_webhook(self, params: dict[str, Any], token: str) -> bool:
        url = params.get("url", "")
        if not url:
            self.webhook = None
            return True
        if not url.startswith("https://"):
            raise FakeApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not is_valid_telegram_secret(secret):
            raise FakeApiError(
                400, "Bad Request: bad webhook: secret token contains unallowed characters"
            )
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = dict(params)
        return True

    def _delete_webhook(self, params: dict[str, Any], token: str) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    def _get_webhook_info(self, params: dict[str, Any], token: str) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        for key in ("max_connections", "allowed_updates", "ip_address"):
            if self.webhook and key in self.webhook:
                info[key] = self.webhook[key]
        return info

    async def _get_updates(self, params: dict[str, Any], token: str) -> list[dict[str, Any]]:
        if self.webhook:
            raise FakeApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = params.get("offset", 0), min(max(params.get("limit", 100), 1), 100)
        if offset > 0:  # confirming: updates below the offset are forgotten
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        wait = min(float(params.get("timeout", 0)), self.max_poll_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self._updates and not self._closing and loop.time() < deadline:
            self._changed.clear()
            try:
                async with asyncio.timeout(deadline - loop.time()):
                    await self._changed.wait()
            except TimeoutError:
                break
        return self._updates[:limit]

    def _set_my_commands(self, params: dict[str, Any], token: str) -> bool:
        key = json.dumps([params.get("scope"), params.get("language_code")])
        self.commands[key] = list(params.get("commands", []))
        return True

    def _get_my_commands(self, params: dict[str, Any], token: str) -> list[dict[str, Any]]:
        key = json.dumps([params.get("scope"), params.get("language_code")])
        return self.commands.get(key, [])
