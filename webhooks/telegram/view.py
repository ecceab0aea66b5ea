"""POST /webhooks/telegram: secret check → durable inbox (update_id) → 200 → process.

Unlike aiogram's stock handler, the update is stored before the 200, so a crash after
the acknowledgment loses nothing (the runtime replays pending inbox rows on start).
A handler error never turns into a 5xx (Telegram would re-send the update).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from webhooks.limits import BodyTooLarge, read_limited

MAX_BODY = 1024 * 1024


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/telegram")
    async def telegram_webhook(request: Request) -> JSONResponse:
        runtime = request.app.state.runtime
        front = runtime.telegram
        if front is None:
            return JSONResponse({"error": "telegram is not configured"}, status_code=404)
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        expected = runtime.settings.telegram_webhook_secret()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"error": "bad secret token"}, status_code=401)
        try:
            body = await read_limited(request, MAX_BODY)
        except BodyTooLarge:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            fresh = await front.accept(body)
        except ValueError:
            return JSONResponse({"error": "malformed update"}, status_code=422)
        return JSONResponse({"ok": True, "duplicate": not fresh})

    return router
