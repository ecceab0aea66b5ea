"""The resident web chat: the page and its three JSON endpoints (history, send, updates)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError, model_validator

from bot.events import InEvent
from community.catalog import section, t
from community.webchat import (
    CHANNEL,
    as_json,
    find_incoming,
    history,
    messages_after,
    record_incoming,
    record_replies,
    web_identity,
)
from storage.db import transaction
from web.visitor import ensure_visitor, visitor_id
from webhooks.limits import BodyTooLarge, read_limited

MAX_BODY = 16 * 1024


class SendBody(BaseModel):
    client_msg_id: str = Field(min_length=1, max_length=64)
    text: str | None = None
    button: str | None = Field(default=None, max_length=64)
    label: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _one_of(self) -> SendBody:
        if self.text is None and self.button is None:
            raise ValueError("text or button required")
        return self


def _error(
    status: int, reason: str, message_key: str | None = None, **params: object
) -> JSONResponse:
    body = {"error": reason}
    if message_key:
        body["message"] = t(f"web.{message_key}", **params)
    return JSONResponse(body, status_code=status)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    async def chat_page(request: Request) -> Response:
        templates = request.app.state.templates
        response = templates.TemplateResponse(
            request, "chat.html", {"t": section("web"), "static_url": "/static"}
        )
        ensure_visitor(request, response)
        return response

    @router.get("/api/chat/history")
    async def chat_history(request: Request) -> JSONResponse:
        runtime = request.app.state.runtime
        response = JSONResponse({})
        visitor = ensure_visitor(request, response)
        async with transaction(runtime.factory) as session:
            identity = await web_identity(session, visitor)
            rows = await history(session, identity.id)
            identity_id = identity.id
        if not rows:
            # First visit: the welcome is the dialog's answer to an opening "start".
            replies = await runtime.dialog.handle(
                InEvent(channel=CHANNEL, external_id=visitor, text="/start"), check_throttle=False
            )
            async with transaction(runtime.factory) as session:
                record_replies(session, identity_id, replies)
            async with transaction(runtime.factory) as session:
                rows = await history(session, identity_id)
        response.body = response.render({"messages": [as_json(m) for m in rows]})
        response.headers["content-length"] = str(len(response.body))
        return response

    @router.post("/api/chat/send")
    async def chat_send(request: Request) -> JSONResponse:
        runtime = request.app.state.runtime
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(415, "content-type must be application/json")
        visitor = visitor_id(request)
        if visitor is None:
            return _error(401, "no chat session: load the page first", "session_expired")
        try:
            raw = await read_limited(request, MAX_BODY)
            body = SendBody.model_validate(json.loads(raw))
        except BodyTooLarge:
            return _error(413, "body too large", "too_long", max=runtime.settings.max_message_chars)
        except (ValueError, ValidationError):
            return _error(422, "malformed message")

        shown = body.text if body.text is not None else (body.label or body.button or "")
        async with transaction(runtime.factory) as session:
            identity = await web_identity(session, visitor)
            incoming = await record_incoming(
                session,
                identity.id,
                shown[: runtime.settings.max_message_chars + 1],
                body.client_msg_id,
            )
            if incoming is None:  # a retry of a message already handled
                first = await find_incoming(session, identity.id, body.client_msg_id)
                after = first.id - 1 if first else 0
                rows = await messages_after(session, identity.id, after)
                return JSONResponse({"messages": [as_json(m) for m in rows], "duplicate": True})
            identity_id, incoming_id = identity.id, incoming.id

        replies = await runtime.dialog.handle(
            InEvent(channel=CHANNEL, external_id=visitor, text=body.text, payload=body.button)
        )
        async with transaction(runtime.factory) as session:
            record_replies(session, identity_id, replies)
        async with transaction(runtime.factory) as session:
            rows = await messages_after(session, identity_id, incoming_id - 1)
        runtime.wake_outbox()
        return JSONResponse({"messages": [as_json(m) for m in rows]})

    @router.get("/api/chat/updates")
    async def chat_updates(request: Request, after: int = 0) -> JSONResponse:
        runtime = request.app.state.runtime
        visitor = visitor_id(request)
        if visitor is None:
            return JSONResponse({"messages": []})
        async with transaction(runtime.factory) as session:
            identity = await web_identity(session, visitor)
            rows = await messages_after(session, identity.id, after, outgoing_only=True)
        return JSONResponse({"messages": [as_json(m) for m in rows]})

    return router
