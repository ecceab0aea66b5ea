"""The acknowledging path alone, as a tiny FastAPI app (bench_inbound.py serves it).

POST /ack/<channel> does exactly what the durable ack does in production, and nothing
more: size limit → Standard Webhooks verify on the raw bytes → webhook-id check →
``storage.inbox.InboxWriter.store`` (sqlite3 insert, or a group-committed INSERT … ON
CONFLICT DO NOTHING RETURNING on PostgreSQL) → 200.
That is the part of webhooks/telegram/view.py + TelegramFront.accept before work is
scheduled, with the generic channel's signature check.

Settings come from LINLI_DATABASE_URL and BENCH_SECRET. Served with
``uvicorn bench.ack_app:create_app --factory``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from storage import inbox
from storage.db import create_engine
from storage.migrate import upgrade
from webhooks.generic.crypto import SignatureError, verify
from webhooks.limits import BodyTooLarge, read_limited

MAX_BODY = 64 * 1024


def create_app() -> FastAPI:
    url = os.environ["LINLI_DATABASE_URL"]
    secret = os.environ.get("BENCH_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    engine = create_engine(url)
    writer = inbox.InboxWriter(engine)  # the production ack path (group commit / sqlite3)
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade(engine)
        state["ready"] = True
        try:
            yield
        finally:
            await writer.close()
            await engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    @app.post("/ack/{channel}")
    async def ack(channel: str, request: Request) -> JSONResponse:
        try:
            body = await read_limited(request, MAX_BODY)
        except BodyTooLarge:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            verify(secret, request.headers, body)
        except SignatureError as exc:
            return JSONResponse({"error": f"signature: {exc.reason}"}, status_code=401)
        msg_id = request.headers.get("webhook-id", "")
        if not 0 < len(msg_id) <= 128:
            return JSONResponse({"error": "signature: bad webhook-id"}, status_code=401)
        event_id = await writer.store(f"generic:{channel}", msg_id, body.decode())
        return JSONResponse({"ok": True, "duplicate": event_id is None})

    return app
