"""POST /webhooks/generic/<channel>: verify → dedupe → parse → dialog → replies (interfaces.md §2).

Order matters: the size limit and the signature are checked on the raw bytes before any
parsing; the event is stored under its webhook-id before the dialog runs, so a retried
delivery answers from the stored result and acts no second time.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, model_validator

from bot.events import InEvent
from storage import inbox
from webhooks.generic.crypto import SignatureError, verify
from webhooks.limits import BodyTooLarge, read_limited

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


class GenericUser(BaseModel):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=64)


class GenericMessage(BaseModel):
    text: str | None = None
    button: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> GenericMessage:
        if self.text is None and self.button is None:
            raise ValueError("message needs text or button")
        return self


class GenericInbound(BaseModel):
    user: GenericUser
    message: GenericMessage


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/generic/{channel}")
    async def generic_inbound(channel: str, request: Request) -> JSONResponse:
        runtime = request.app.state.runtime
        config = runtime.settings.generic_channels.get(channel)
        if config is None:
            return _error(404, "unknown channel")
        try:
            body = await read_limited(request, MAX_BODY)
        except BodyTooLarge:
            return _error(413, "body larger than 64 KiB")
        try:
            verify(config.secret.get_secret_value(), request.headers, body)
        except SignatureError as exc:
            log.warning("generic signature rejected", extra={"channel": channel})
            return _error(401, f"signature: {exc}")
        msg_id = request.headers.get("webhook-id", "")
        if not 0 < len(msg_id) <= 128:
            return _error(401, "signature: bad webhook-id")
        try:
            inbound = GenericInbound.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            return _error(422, _short(exc))

        source = f"generic:{channel}"
        event_id = await runtime.inbox.store(source, msg_id, body.decode("utf-8"))
        if event_id is None:
            stored = await inbox.get_event(runtime.engine, source, msg_id)
            result = (stored or {}).get("result") or {}
            return JSONResponse({"duplicate": True, "replies": result.get("replies", [])})

        event = InEvent(
            channel=source,
            external_id=inbound.user.id,
            text=inbound.message.text,
            payload=inbound.message.button,
            display_name=inbound.user.name,
        )
        replies = [r.as_dict() for r in await runtime.dialog.handle(event, inbox_event_id=event_id)]
        runtime.wake_outbox()
        return JSONResponse({"replies": replies})

    return router


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid field {where}: {first.get('msg', '')}"[:200]
    return "malformed JSON"
