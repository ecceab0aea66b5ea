"""A fake messenger bridge that receives generic-channel pushes (interfaces.md §2) in tests.

It checks signatures with the independent ``standardwebhooks`` library when installed (a dev
dependency), so our signer is tested against someone else's verifier, not against itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from webhooks.generic import crypto

__all__ = ["FakePush", "Received", "StatusSpec"]

# An answer: a bare status, or a status with extra headers, e.g. (429, {"Retry-After": "7"}).
StatusSpec = int | tuple[int, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Received:
    """One signed request the bridge accepted for processing, and what it answered."""

    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


def _make_verifier(secret: str) -> Callable[[dict[str, str], bytes], bool]:
    try:
        from standardwebhooks.webhooks import Webhook
    except ImportError:  # pragma: no cover - dev dependency missing: fall back to ours

        def ours(headers: dict[str, str], body: bytes) -> bool:
            try:
                crypto.verify(secret, headers, body)
            except crypto.SignatureError:
                return False
            return True

        return ours

    webhook = Webhook(secret)

    def theirs(headers: dict[str, str], body: bytes) -> bool:
        try:
            webhook.verify(body, headers, json_parse=False)
        except Exception:  # their errors, bad base64, non-UTF-8 bodies: all mean "reject"
            return False
        return True

    return theirs


class FakePush:
    """aiohttp server on 127.0.0.1; POST ``.url`` with a Standard Webhooks signature."""

    def __init__(self, secret: str, statuses: Iterable[StatusSpec] | StatusSpec = 200) -> None:
        crypto.parse_secret(secret)  # fail early on a malformed test secret
        self._verify = _make_verifier(secret)
        self.received: list[Received] = []
        self.rejected: list[Received] = []  # bad or missing signature: answered 401
        self._statuses: list[StatusSpec] = []
        self.respond_with(statuses)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @property
    def url(self) -> str:
        return f"{self.base_url}/push"

    def respond_with(self, statuses: Iterable[StatusSpec] | StatusSpec) -> None:
        """Answer these statuses in order to verified requests; the last one then repeats."""
        if isinstance(statuses, int | tuple):
            statuses = [statuses]
        self._statuses = list(statuses) or [200]

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/push", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5,  # noqa: ASYNC109 - the familiar asyncio.wait_for shape, for tests
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after each request); return it."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # raw bytes: the signature covers exactly these
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not self._verify(headers, body):
            self.rejected.append(Received(headers, body, 401))
            self._changed.set()
            return web.json_response({"error": "bad_signature"}, status=401)
        spec = self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]
        status, extra = spec if isinstance(spec, tuple) else (spec, {})
        self.received.append(Received(headers, body, status))
        self._changed.set()
        return web.json_response({"status": status}, status=status, headers=extra)
