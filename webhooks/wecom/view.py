"""GET/POST /webhooks/wecom: a WeCom self-built app's callback URL (platforms.md §2).

GET is the URL verification: the decrypted ``echostr`` as text/plain, byte for byte.
POST: size limit → envelope (defusedxml) → ``msg_signature`` over ``Encrypt`` → decrypt
(padding, length and CorpID checked) → parse → inbox → empty 200. Nothing is stored before
the signature and the decryption hold. The reply is never passive: WeCom's active send has no
window or quota for a member of the corp, so the acknowledgment never waits for the dialog
and the answer goes through the outbox (``webhooks/wecom/client.py``).

Rejections: 404 when WeCom is not configured, 413 over 64 KiB, 400 malformed XML (including
any DTD or entity), 403 for every signature or decryption failure. A well-signed message
we do not act on (another app's AgentID, an event without meaning here) is answered 200 so
that WeCom does not retry it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from linli.settings import Settings
from webhooks.errors import BadXml, WebhookError
from webhooks.limits import BodyTooLarge, read_limited
from webhooks.wecom.crypto import MsgCrypt
from webhooks.wecom.front import front_for, parse_message, parse_query
from webhooks.xmlsafe import MAX_XML_BYTES, parse_xml

__all__ = ["build_router", "crypt_for"]

log = logging.getLogger(__name__)
CHANNEL = "wecom"
PATH = "/webhooks/wecom"
ACK = ""  # an empty 200: acknowledged, no passive reply, no retry


def crypt_for(settings: Settings) -> MsgCrypt:
    assert settings.wecom_token is not None and settings.wecom_aes_key is not None
    return MsgCrypt(
        settings.wecom_token.get_secret_value(),
        settings.wecom_aes_key.get_secret_value(),
        settings.wecom_corp_id,
    )


def _reject(status: int, reason: str) -> Response:
    log.warning("wecom callback rejected: %s", reason)
    return PlainTextResponse(reason, status_code=status)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get(PATH)
    async def wecom_verify_url(request: Request) -> Response:
        settings: Settings = request.app.state.runtime.settings
        if not settings.wecom_enabled:
            return PlainTextResponse("not found", status_code=404)
        query = parse_query(request.url.query)
        try:
            plain = crypt_for(settings).verify_url(
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
                query.get("echostr", ""),
            )
        except WebhookError as exc:
            return _reject(403, exc.reason)
        return PlainTextResponse(plain)

    @router.post(PATH)
    async def wecom_callback(request: Request) -> Response:
        runtime = request.app.state.runtime
        settings: Settings = runtime.settings
        if not settings.wecom_enabled:
            return PlainTextResponse("not found", status_code=404)
        try:
            body = await read_limited(request, MAX_XML_BYTES)
        except BodyTooLarge:
            return _reject(413, "too_large")
        query = parse_query(request.url.query)
        try:
            envelope = parse_xml(body)  # only to find Encrypt; nothing in it is trusted
            plaintext = crypt_for(settings).decrypt_message(
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
                envelope.get("Encrypt", ""),
            )
            inbound = parse_message(CHANNEL, plaintext)
        except BadXml as exc:
            return _reject(400, exc.reason)
        except WebhookError as exc:
            return _reject(403, exc.reason)
        front = front_for(runtime, CHANNEL, ACK)
        if inbound.agent_id and inbound.agent_id != str(settings.wecom_agent_id):
            log.info("wecom: message for another agent ignored")
            return front.ack()
        return await front.receive(inbound, plaintext)

    return router
