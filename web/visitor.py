"""The web chat visitor cookie: a signed random id, so a resident needs no account."""

from __future__ import annotations

import secrets

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "linli_web"
MAX_AGE = 400 * 24 * 3600


def _serializer(request: Request) -> URLSafeSerializer:
    secret = request.app.state.runtime.settings.secret_key.get_secret_value()
    return URLSafeSerializer(secret, salt="linli-web-visitor")


def visitor_id(request: Request) -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _serializer(request).loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) and 8 <= len(value) <= 64 else None


def ensure_visitor(request: Request, response: Response) -> str:
    current = visitor_id(request)
    if current is not None:
        return current
    new = secrets.token_urlsafe(18)
    response.set_cookie(
        COOKIE,
        _serializer(request).dumps(new),
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return new
