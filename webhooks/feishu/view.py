"""POST /webhooks/feishu: a Feishu/Lark app's event subscription URL (platforms.md §5.1).

Order: configured? → size limit (64 KiB) → with an Encrypt Key: ``X-Lark-Signature`` over
the raw bytes (when the headers are there), then decrypt → verification token → inbox →
``{"msg": "success"}`` with 200 within Feishu's 3 s → the dialog step after the response →
the reply through the outbox (``webhooks/feishu/client.py``, the message API).

- ``url_verification`` comes without signature headers (encrypted or not): it is answered
  ``{"challenge": …}`` when its token is ours, and it is the only thing accepted unsigned
  while an Encrypt Key is configured. Without an Encrypt Key, Feishu signs nothing and
  the verification token inside the JSON is the only check (hence: configure the key).
- Dedupe: ``im.message.receive_v1`` by ``message.message_id`` (Feishu's advice: a message may
  be re-pushed under a new ``event_id``; a re-push under the same ``event_id`` has the same
  message id anyway). Other event types are acknowledged and not acted on.
- Message types: text (``@_user_N`` placeholders dropped) and ``post`` (its words) go to
  the dialog; image, audio, media, file, sticker … get the polite 「请用文字描述」; a
  location is acknowledged and asks for words. Group chats, other apps' messages and
  events without meaning here are answered 200 and not stored.
- No timestamp window: Feishu re-pushes the same event up to 6 h later, and the inbox
  dedupe already makes a replay harmless.

Rejections, with nothing stored: 404 (not configured), 413 (over 64 KiB), 403 (signature,
decryption or token), 400 (a body that is not the documented JSON).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from bot.events import InEvent
from linli.settings import Settings
from webhooks.errors import BadSignature, WebhookError
from webhooks.feishu.crypto import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    check_event_signature,
    check_token,
    decrypt,
)
from webhooks.jsonfront import MAX_JSON_BYTES, BadPayload, json_front_for, load_object
from webhooks.limits import BodyTooLarge, read_limited
from webhooks.wecom.front import Inbound

__all__ = ["build_router", "inbound_from", "parse_message"]

log = logging.getLogger(__name__)
CHANNEL = "feishu"
PATH = "/webhooks/feishu"
ACK = {"msg": "success"}
MESSAGE_EVENT = "im.message.receive_v1"
_MAX_ID = 128
_MENTION = re.compile(r"@_(?:user_\d+|all)")
_MEDIA = {"image": "image", "sticker": "image", "audio": "voice", "media": "video"}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _post_words(content: dict[str, Any]) -> tuple[str, bool]:
    """The words of a rich-text ``post`` (title first), and whether it held images."""
    if "content" not in content:  # a per-language wrapper: {"zh_cn": {...}}
        content = next((v for v in content.values() if isinstance(v, dict)), {})
    lines = [_str(content.get("title")).strip()]
    images = False
    for paragraph in content.get("content") or []:
        words = []
        for element in paragraph if isinstance(paragraph, list) else []:
            element = _dict(element)
            if element.get("tag") in {"text", "a"}:
                words.append(_str(element.get("text")))
            elif element.get("tag") in {"img", "media"}:
                images = True
        lines.append("".join(words).strip())
    return "\n".join(line for line in lines if line), images


def _message(data: dict[str, Any]) -> Inbound:
    event = _dict(data.get("event"))
    sender, message = _dict(event.get("sender")), _dict(event.get("message"))
    user = _str(_dict(sender.get("sender_id")).get("open_id")).strip()
    message_id = _str(message.get("message_id")).strip()
    if not user or len(user) > _MAX_ID or not message_id or len(message_id) > 128:
        raise BadPayload("bad_message")
    if sender.get("sender_type") != "user" or message.get("chat_type") != "p2p":
        log.info("feishu: message from a group or an app ignored")
        return Inbound(user, "", None, None)
    try:
        content = _dict(json.loads(_str(message.get("content")) or "{}"))
    except ValueError as exc:
        raise BadPayload("bad_content") from exc
    kind = _str(message.get("message_type"))
    key = f"m:{message_id}"

    def base(**kw: Any) -> InEvent:
        return InEvent(channel=CHANNEL, external_id=user, **kw)

    if kind == "text":
        return Inbound(user, "", key, base(text=_MENTION.sub("", _str(content.get("text")))))
    if kind == "post":
        words, images = _post_words(content)
        if words:
            return Inbound(user, "", key, base(text=words))
        return Inbound(user, "", key, base(media="image" if images else "file"))
    if kind == "location":
        label = " ".join(_str(content.get("name")).split())[:200]
        return Inbound(user, "", key, None, location=label)
    return Inbound(user, "", key, base(media=_MEDIA.get(kind, "file")))


def inbound_from(data: dict[str, Any]) -> Inbound:
    """A decrypted schema 2.0 event as an ``Inbound`` (key None: nothing to act on)."""
    header = _dict(data.get("header"))
    if header.get("event_type") == MESSAGE_EVENT:
        return _message(data)
    event_id = _str(header.get("event_id"))[:64]
    log.info("feishu: event %r not handled", _str(header.get("event_type"))[:64])
    return Inbound(event_id, "", None, None)


def parse_message(raw: str) -> Inbound:
    """The Inbound of a stored (decrypted) event, for recovery."""
    return inbound_from(load_object(raw))


def _reject(status: int, reason: str) -> Response:
    log.warning("feishu callback rejected: %s", reason)
    return PlainTextResponse(reason, status_code=status)


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def _open(settings: Settings, request: Request, body: bytes) -> tuple[str, dict[str, Any]]:
    """The event's plaintext JSON and object: signature checked and decrypted when keyed."""
    encrypt_key = _secret(settings.feishu_encrypt_key)
    if not encrypt_key:
        outer = load_object(body)
        if "encrypt" in outer:
            raise BadPayload("encrypted_without_key")
        return body.decode("utf-8"), outer
    signature = request.headers.get(HEADER_SIGNATURE)
    if signature is not None:
        check_event_signature(
            encrypt_key,
            request.headers.get(HEADER_TIMESTAMP),
            request.headers.get(HEADER_NONCE),
            signature,
            body,
        )
    ciphertext = load_object(body).get("encrypt")
    if not isinstance(ciphertext, str):
        raise BadPayload("not_encrypted")
    plain = decrypt(encrypt_key, ciphertext)
    data = load_object(plain)
    if signature is None and data.get("type") != "url_verification":
        raise BadSignature("missing_headers")  # only the challenge comes unsigned
    return plain, data


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post(PATH)
    async def feishu_callback(request: Request) -> Response:
        runtime = request.app.state.runtime
        settings: Settings = runtime.settings
        if not settings.feishu_enabled:
            return PlainTextResponse("not found", status_code=404)
        token = _secret(settings.feishu_verification_token)
        try:
            body = await read_limited(request, MAX_JSON_BYTES)
        except BodyTooLarge:
            return _reject(413, "too_large")
        try:
            plain, data = _open(settings, request, body)
            if data.get("type") == "url_verification":
                check_token(token, data.get("token"))
                challenge = data.get("challenge")
                if not isinstance(challenge, str) or len(challenge) > 256:
                    raise BadPayload("bad_challenge")
                return JSONResponse({"challenge": challenge})
            header = data.get("header")
            if data.get("schema") != "2.0" or not isinstance(header, dict):
                check_token(token, data.get("token"))  # a 1.0 event: not subscribed, ignored
                return JSONResponse(ACK)
            check_token(token, header.get("token"))
            inbound = inbound_from(data)
        except BadPayload as exc:
            return _reject(400, exc.reason)
        except UnicodeDecodeError:
            return _reject(400, "not_utf8")
        except WebhookError as exc:
            return _reject(403, exc.reason)
        front = json_front_for(runtime, CHANNEL, parse_message, ACK)
        return await front.receive(inbound, plain)

    return router
