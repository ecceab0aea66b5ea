"""/healthz, /readyz and /metrics (interfaces.md §5)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "linli_http_requests_total", "HTTP requests", ["route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "linli_http_request_seconds", "HTTP request latency", ["route"], registry=REGISTRY
)


class MetricsMiddleware:
    """Counts and times requests by route template (raw paths would explode the labels).

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs an extra task per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(route, str(status)).inc()
            HTTP_LATENCY.labels(route).observe(time.perf_counter() - start)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        from storage.migrate import is_current

        runtime = request.app.state.runtime
        checks = {"started": runtime.ready, "database": False, "migrations": False}
        try:
            checks["migrations"] = await is_current(runtime.engine)
            checks["database"] = True
        except Exception:
            checks["database"] = False
        ready = all(checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
