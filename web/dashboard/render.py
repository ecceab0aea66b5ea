"""Rendering helpers: catalog texts for templates, local times, flash messages, headers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from community.catalog import section
from storage.models import StaffAccount
from web.dashboard.csrf import ensure_token

FLASH_KEY = "flash"
# Private data: never cached, never framed, no referrer to other sites.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; frame-ancestors 'none'",
}


def _local_zone() -> timezone | ZoneInfo:
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:  # no tz database in a slim image: China has no DST
        return timezone(timedelta(hours=8))


LOCAL = _local_zone()


@cache
def texts() -> dict[str, Any]:
    """The ``dash`` catalog section as nested dicts, so templates write ``t.login.title``."""
    nested: dict[str, Any] = {}
    for key, value in section("dash").items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def flash(request: Request, kind: str, text: str) -> None:
    request.session[FLASH_KEY] = {"kind": kind, "text": text}


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    viewer: StaffAccount | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    base = {
        "t": texts(),
        "viewer": viewer,
        "csrf": ensure_token(request.session),
        "flash": request.session.pop(FLASH_KEY, None),
        "fmt_time": fmt_time,
        "static_url": "/static",
    }
    response = request.app.state.templates.TemplateResponse(
        request, f"dashboard/{name}", {**base, **context}, status_code=status_code
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(
    request: Request, status_code: int, title: str, message: str, viewer: StaffAccount | None
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        viewer=viewer,
        status_code=status_code,
    )
