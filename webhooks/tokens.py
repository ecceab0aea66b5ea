"""Access tokens of the platforms' active-send APIs: one cache, one refresher, no stampede.

WeCom and WeChat hand out a bearer ``access_token`` valid for ``expires_in`` seconds (7200).
Fetching one is itself rate-limited, and on WeChat a new token invalidates the previous one
(platforms.md §2.5, §3), so every sender of one app must share one cached token and at most
one coroutine may fetch at a time. ``AccessTokenCache`` does exactly that:

- ``get()`` answers from the cache until ``refresh_at`` (``margin_s`` before the expiry, so a
  token is never used in its last minutes); after that the first caller fetches under an
  asyncio lock while the others wait for its result — 20 concurrent sends, one fetch.
- ``invalidate(token)`` forgets the token *only if it is still the current one*: when 20
  sends fail with "expired" at once, the first invalidation triggers one refresh and the
  other 19 are no-ops instead of 19 more refreshes.
- a failed fetch is remembered for ``failure_backoff_s``: a wrong secret does not turn every
  queued message into another ``gettoken`` call.

The cache is per process. Several processes of one deployment each hold their own token;
on WeChat that makes them invalidate each other's (a shared store is future work).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["AccessTokenCache", "Token", "TokenError"]

# Refresh this long before the platform's expiry (capped at half the lifetime).
DEFAULT_MARGIN_S = 300.0
DEFAULT_FAILURE_BACKOFF_S = 5.0


class TokenError(Exception):
    """The platform refused to issue a token (``code`` is its errcode, -1 for transport)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else str(code))
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: float
    refresh_at: float


Fetch = Callable[[], Awaitable[tuple[str, float]]]


class AccessTokenCache:
    """One app's token: ``fetch()`` returns ``(token, expires_in_seconds)`` or raises TokenError."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        failure_backoff_s: float = DEFAULT_FAILURE_BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.margin_s = margin_s
        self.failure_backoff_s = failure_backoff_s
        self.clock = clock
        self._current: Token | None = None
        self._lock = asyncio.Lock()
        self._failure: tuple[float, TokenError] | None = None
        self.refreshes = 0  # successful fetches, for tests and metrics

    def _fresh(self) -> Token | None:
        token = self._current
        return token if token is not None and self.clock() < token.refresh_at else None

    async def get(self) -> str:
        """A valid token, fetched at most once however many callers ask at the same time."""
        token = self._fresh()
        if token is not None:
            return token.value
        async with self._lock:
            token = self._fresh()  # another caller refreshed while we waited for the lock
            if token is not None:
                return token.value
            now = self.clock()
            if self._failure is not None and now - self._failure[0] < self.failure_backoff_s:
                raise self._failure[1]
            try:
                value, expires_in = await self._fetch()
            except TokenError as exc:
                self._failure = (self.clock(), exc)
                raise
            if not value or expires_in <= 0:
                error = TokenError(-1, "empty token or lifetime")
                self._failure = (self.clock(), error)
                raise error
            self._failure = None
            now = self.clock()
            lifetime = max(expires_in - self.margin_s, expires_in / 2)
            self._current = Token(value, now + expires_in, now + lifetime)
            self.refreshes += 1
            return value

    def invalidate(self, value: str) -> None:
        """The platform said ``value`` is invalid or expired: refetch on the next ``get``."""
        if self._current is not None and self._current.value == value:
            self._current = None

    @property
    def current(self) -> Token | None:
        return self._current
