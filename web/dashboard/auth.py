"""Who is looking: the session's account, login/logout of the session, and a login throttle.

The throttle is in memory, per process: with several processes an attacker gets a few
more tries, which the argon2 cost and the lockout still keep small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from community.staff import get_active_staff
from storage.db import transaction
from storage.models import StaffAccount
from web.dashboard.csrf import rotate_token

SESSION_STAFF = "staff_id"
LOGIN_PATH = "/staff/login"


def client_key(request: Request, username: str) -> tuple[str, str]:
    """What the login throttle counts by: the typed name and the caller's address."""
    host = request.client.host if request.client else "-"
    return (username.strip().lower()[:64], host)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def current_viewer(request: Request) -> StaffAccount:
    """The logged-in, still active account; otherwise a redirect (pages) or a 401 (API)."""
    staff_id = request.session.get(SESSION_STAFF)
    account = None
    if isinstance(staff_id, int):
        async with transaction(request.app.state.runtime.factory) as session:
            account = await get_active_staff(session, staff_id)
    if account is None:
        request.session.pop(SESSION_STAFF, None)
        if wants_html(request):
            raise HTTPException(303, "login required", headers={"Location": LOGIN_PATH})
        raise HTTPException(401, "login required")
    return account


Viewer = Annotated[StaffAccount, Depends(current_viewer)]


def start_session(request: Request, account: StaffAccount) -> None:
    """A fresh session for a fresh login: nothing from before survives (no fixation)."""
    request.session.clear()
    request.session[SESSION_STAFF] = account.id
    rotate_token(request.session)


def end_session(request: Request) -> None:
    request.session.clear()
    rotate_token(request.session)


class LoginThrottle:
    """Failed logins per (username, address): after ``limit`` failures, locked for a while."""

    def __init__(
        self,
        limit: int = 10,
        lockout_s: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}

    def locked(self, key: tuple[str, str]) -> bool:
        count, last = self._failures.get(key, (0, 0.0))
        if count < self.limit:
            return False
        if self.clock() - last >= self.lockout_s:
            del self._failures[key]  # lockout over: a clean slate
            return False
        return True

    def failure(self, key: tuple[str, str]) -> None:
        if len(self._failures) >= self.max_keys and key not in self._failures:
            # Bounded memory under a spray of names: forget the oldest entry.
            oldest = min(self._failures, key=lambda k: self._failures[k][1])
            del self._failures[oldest]
        count, _ = self._failures.get(key, (0, 0.0))
        self._failures[key] = (count + 1, self.clock())

    def success(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)
