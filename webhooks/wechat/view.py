"""GET/POST /webhooks/wechat: a WeChat Official Account's server URL (platforms.md §3).

GET: ``signature`` over token/timestamp/nonce, then ``echostr`` verbatim (in safe mode too).
POST, safe mode (an AES key is configured): ``encrypt_type=aes`` is required; the
``msg_signature`` over ``Encrypt`` is checked and the message decrypted with the AppID as
receive id. In compatible mode the body also carries plaintext fields: they are ignored,
only ``Encrypt`` counts. A plaintext POST to a safe-mode account is refused: its query
signature does not cover the body, so anyone who saw one request could forge the rest.
POST, plaintext mode: ``signature`` is checked before the body is parsed.

Answer: the dialog step starts before the acknowledgment; if it finishes within
``wechat_passive_reply_s`` (default 3 s, under WeChat's 5 s) its reply is the HTTP response
(passive reply, encrypted in safe mode). Otherwise ``success`` at once and the reply follows
through the customer-service API. Passive replies cost no customer-service quota and also
work for accounts without that API; the usual step takes milliseconds.

Rejections: 404 when WeChat is not configured, 413 over 64 KiB, 400 malformed XML (any DTD
or entity included), 403 for signature and decryption failures. Nothing is stored for them.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from community.notify import Reply
from linli.settings import Settings
from webhooks.errors import BadXml, WebhookError
from webhooks.limits import BodyTooLarge, read_limited
from webhooks.render import TEXT_LIMIT_BYTES, numbered
from webhooks.wechat.crypto import MsgCrypt, check_signature, safe_mode, verify_url
from webhooks.wecom.front import Inbound, Passive, front_for, parse_message, parse_query
from webhooks.xmlsafe import MAX_XML_BYTES, build_xml, parse_xml

__all__ = ["build_router", "passive_reply_xml"]

log = logging.getLogger(__name__)
CHANNEL = "wechat"
PATH = "/webhooks/wechat"
ACK = "success"  # WeChat's documented "received, no reply, do not retry"


def _token(settings: Settings) -> str:
    assert settings.wechat_token is not None
    return settings.wechat_token.get_secret_value()


def _crypt(settings: Settings) -> MsgCrypt | None:
    if settings.wechat_aes_key is None:
        return None
    return safe_mode(
        _token(settings), settings.wechat_aes_key.get_secret_value(), settings.wechat_app_id
    )


def passive_reply_xml(inbound: Inbound, text: str, now: int | None = None) -> str:
    """The plaintext passive text reply to ``inbound`` (encrypt it in safe mode)."""
    return build_xml(
        {
            "ToUserName": inbound.user,
            "FromUserName": inbound.to,
            "CreateTime": int(time.time()) if now is None else now,
            "MsgType": "text",
            "Content": text,
        }
    )


def _utf8(body: bytes) -> str:
    # WeChat sends UTF-8; an XML declaration naming another encoding would make the stored
    # payload (replayed after a crash) mean something else than what was parsed now.
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadXml("not_utf8") from exc


def _passive(crypt: MsgCrypt | None) -> Passive:
    def render(inbound: Inbound, reply: Reply) -> Response | None:
        text = numbered(reply.text, reply.buttons)
        if not inbound.to or len(text.encode("utf-8")) > TEXT_LIMIT_BYTES:
            return None  # one passive message cannot hold it: the API sends it in parts
        xml = passive_reply_xml(inbound, text)
        body = crypt.encrypt_reply(xml) if crypt is not None else xml
        return Response(body, media_type="application/xml")

    return render


def _reject(status: int, reason: str) -> Response:
    log.warning("wechat callback rejected: %s", reason)
    return PlainTextResponse(reason, status_code=status)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get(PATH)
    async def wechat_verify_url(request: Request) -> Response:
        settings: Settings = request.app.state.runtime.settings
        if not settings.wechat_enabled:
            return PlainTextResponse("not found", status_code=404)
        query = parse_query(request.url.query)
        try:
            echo = verify_url(
                _token(settings),
                query.get("signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
                query.get("echostr", ""),
            )
        except WebhookError as exc:
            return _reject(403, exc.reason)
        return PlainTextResponse(echo)

    @router.post(PATH)
    async def wechat_callback(request: Request) -> Response:
        runtime = request.app.state.runtime
        settings: Settings = runtime.settings
        if not settings.wechat_enabled:
            return PlainTextResponse("not found", status_code=404)
        try:
            body = await read_limited(request, MAX_XML_BYTES)
        except BodyTooLarge:
            return _reject(413, "too_large")
        query = parse_query(request.url.query)
        ts, nonce = query.get("timestamp", ""), query.get("nonce", "")
        crypt = _crypt(settings)
        try:
            if crypt is not None:
                if query.get("encrypt_type", "").lower() != "aes":
                    return _reject(403, "encryption_required")
                envelope = parse_xml(body)  # only to find Encrypt; nothing in it is trusted
                encrypted = envelope.get("Encrypt", "")
                plaintext = crypt.decrypt_message(
                    query.get("msg_signature", ""), ts, nonce, encrypted
                )
                inbound = parse_message(CHANNEL, plaintext)
            else:
                check_signature(_token(settings), query.get("signature", ""), ts, nonce)
                plaintext = _utf8(body)
                inbound = parse_message(CHANNEL, plaintext)
        except BadXml as exc:
            return _reject(400, exc.reason)
        except WebhookError as exc:
            return _reject(403, exc.reason)
        front = front_for(runtime, CHANNEL, ACK)
        return await front.receive(
            inbound, plaintext, passive=_passive(crypt), wait_s=settings.wechat_passive_reply_s
        )

    return router
