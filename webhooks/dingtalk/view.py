"""POST /webhooks/dingtalk: an enterprise internal robot in HTTP mode (platforms.md §4.1).

Order: configured? → size limit (64 KiB) → ``timestamp``/``sign`` headers (within 1 h, HMAC
of the timestamp with the AppSecret, constant time) → only then the JSON → inbox under
``m:<msgId>`` → ``{}`` with 200 → the dialog step after the response → the reply through
the outbox (``webhooks/dingtalk/client.py``: the sessionWebhook, else the robot API).
The signature covers only the timestamp, so a captured callback replays for an hour: the
inbox's dedupe by ``msgId`` makes that replay a no-op.

Rejections, with nothing stored: 404 when DingTalk is not configured, 413 over 64 KiB,
403 for a missing, malformed, stale or wrong signature, 400 for a signed body that is not
the documented JSON. A well-signed callback we do not act on (a group conversation — the
robot serves residents one to one — or a message type without meaning here) is answered
200 so that DingTalk does not retry it.

Stream mode (§4.2: a WebSocket opened from here, for deployments without a public URL) is
not implemented; HTTP mode needs ``LINLI_PUBLIC_URL``-style reachability from DingTalk.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from bot.events import InEvent
from linli.settings import Settings
from webhooks.dingtalk.client import client_for
from webhooks.dingtalk.crypto import verify_inbound
from webhooks.errors import WebhookError
from webhooks.jsonfront import MAX_JSON_BYTES, BadPayload, json_front_for, load_object
from webhooks.limits import BodyTooLarge, read_limited
from webhooks.wecom.front import Inbound

__all__ = ["build_router", "inbound_from", "parse_message"]

log = logging.getLogger(__name__)
CHANNEL = "dingtalk"
PATH = "/webhooks/dingtalk"
ACK: dict[str, Any] = {}  # 200 with an empty object: received, no synchronous reply
_MAX_ID = 128  # identities.external_id
_MEDIA = {"picture": "image", "video": "video", "file": "file", "audio": "voice"}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _rich_text(content: object) -> tuple[str, bool]:
    """The typed words of a ``richText`` message, and whether it also held pictures."""
    parts = content.get("richText") if isinstance(content, dict) else None
    words: list[str] = []
    pictures = False
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, dict):
            if isinstance(part.get("text"), str):
                words.append(part["text"])
            elif part.get("type") == "picture" or "downloadCode" in part:
                pictures = True
    return "".join(words).strip(), pictures


def inbound_from(data: dict[str, Any]) -> Inbound:
    """The callback's JSON as an ``Inbound``: who wrote, the dedupe key, the neutral event."""
    user = _text(data.get("senderStaffId")).strip() or _text(data.get("senderId")).strip()
    if not user or len(user) > _MAX_ID:
        raise BadPayload("bad_sender")
    msg_id = _text(data.get("msgId")).strip()
    if len(msg_id) > 128:
        raise BadPayload("bad_msg_id")
    if _text(data.get("conversationType")) == "2":
        log.info("dingtalk: group conversation ignored")
        return Inbound(user, "", None, None)
    kind = _text(data.get("msgtype")).strip()
    key = f"m:{msg_id}" if msg_id else None
    name = _text(data.get("senderNick")).strip()[:64] or None

    def event(**kw: Any) -> InEvent:
        return InEvent(channel=CHANNEL, external_id=user, display_name=name, **kw)

    content = data.get("content")
    if kind == "text":
        text = data.get("text")
        inbound_event = event(text=_text(text.get("content") if isinstance(text, dict) else ""))
    elif kind == "richText":
        words, pictures = _rich_text(content)
        inbound_event = event(text=words) if words else event(media="image" if pictures else "file")
    elif (
        kind == "audio" and isinstance(content, dict) and _text(content.get("recognition")).strip()
    ):
        inbound_event = event(text=_text(content["recognition"]).strip())  # DingTalk's own ASR
    elif kind in _MEDIA:
        inbound_event = event(media=_MEDIA[kind])
    else:
        log.info("dingtalk: ignoring message type %r", kind[:32])
        return Inbound(user, "", None, None)
    return Inbound(user, "", key, inbound_event)


def _keyed(inbound: Inbound, raw: str) -> Inbound:
    """A message without ``msgId`` (never seen, but possible) is deduped by its body."""
    if inbound.event is not None and inbound.key is None:
        key = "h:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()
        return Inbound(inbound.user, "", key, inbound.event)
    return inbound


def parse_message(raw: str) -> Inbound:
    """The Inbound of a stored payload (used again by recovery)."""
    return _keyed(inbound_from(load_object(raw)), raw)


def _reject(status: int, reason: str) -> Response:
    log.warning("dingtalk callback rejected: %s", reason)
    return PlainTextResponse(reason, status_code=status)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post(PATH)
    async def dingtalk_callback(request: Request) -> Response:
        runtime = request.app.state.runtime
        settings: Settings = runtime.settings
        if not settings.dingtalk_enabled:
            return PlainTextResponse("not found", status_code=404)
        assert settings.dingtalk_app_secret is not None
        try:
            body = await read_limited(request, MAX_JSON_BYTES)
        except BodyTooLarge:
            return _reject(413, "too_large")
        try:
            verify_inbound(
                request.headers.get("timestamp"),
                request.headers.get("sign"),
                settings.dingtalk_app_secret.get_secret_value(),
            )
        except WebhookError as exc:
            return _reject(403, exc.reason)
        try:
            text = body.decode("utf-8")
            data = load_object(text)
            inbound = _keyed(inbound_from(data), text)
        except UnicodeDecodeError:
            return _reject(400, "not_utf8")
        except BadPayload as exc:
            return _reject(400, exc.reason)
        front = json_front_for(runtime, CHANNEL, parse_message, ACK)
        if inbound.key is not None:
            client_for(runtime).remember_session(
                inbound.user, data.get("sessionWebhook"), data.get("sessionWebhookExpiredTime")
            )
        return await front.receive(inbound, text)

    return router
