"""/healthz, /readyz and /metrics (interfaces.md §5)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "linli_http_requests_total", "HTTP requests", ["route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "linli_http_request_seconds", "HTTP request latency", ["route"], registry=REGISTRY
)


async def metrics_middleware(request: Request, call_next):  # type: ignore[no-untyped-def]
    """Count and time requests by route template (not raw path: ids would explode labels)."""
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    name = getattr(route, "path", "unmatched")
    HTTP_REQUESTS.labels(name, str(response.status_code)).inc()
    HTTP_LATENCY.labels(name).observe(time.perf_counter() - start)
    return response


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
        except Exception:  # noqa: BLE001 - unreachable database: not ready
            checks["database"] = False
        ready = all(checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
