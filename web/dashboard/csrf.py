"""CSRF defence for the dashboard's forms: a per-session token plus an Origin/Referer check.

The token lives in the signed session cookie and is rotated at login, so a token seen
before login (or by another session) is worthless afterwards.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import FormData

SESSION_KEY = "csrf"
FIELD = "csrf"


def ensure_token(session: dict[str, Any]) -> str:
    """The session's token, created on first use (the login form needs one too)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = rotate_token(session)
    return token


def rotate_token(session: dict[str, Any]) -> str:
    token = secrets.token_urlsafe(32)
    session[SESSION_KEY] = token
    return token


def _allowed_hosts(request: Request) -> set[str]:
    hosts = {request.headers.get("host", "")}
    public = request.app.state.runtime.settings.public_url
    if public:
        hosts.add(urlsplit(public).netloc)
    return {h.lower() for h in hosts if h}


def origin_ok(request: Request) -> bool:
    """A browser's Origin (or else Referer) must name this site; absent headers are allowed."""
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value:
            if value == "null":
                return False
            return urlsplit(value).netloc.lower() in _allowed_hosts(request)
    return True


async def checked_form(request: Request) -> FormData | None:
    """The posted form if its token and origin are right; None means reject with 403."""
    if not origin_ok(request):
        return None
    form = await request.form()
    sent = form.get(FIELD)
    expected = request.session.get(SESSION_KEY)
    if not isinstance(sent, str) or not isinstance(expected, str) or not expected:
        return None
    if not secrets.compare_digest(sent.encode(), expected.encode()):
        return None
    return form
