"""The three robot platforms faked side by side, an app pointed at them, clocks to step.

``FakeWecomRobot`` is WeCom's group robot webhook (platforms.md §2.6): unknown key → 93000,
text over 2048 bytes → 40058, and **20 messages per minute per robot** → 45009. The DingTalk
and Feishu custom robots are served by ``tests/support/fake_dingtalk.py`` and
``fake_feishu.py``. The app's outbox limiter, the outbox's clock and the fakes' clocks are
all stepped together by ``RobotWorld.advance`` — no test sleeps.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from community import clock
from community.audit import SYSTEM
from community.ratelimit import RateLimiter
from community.requests import Intake, submit_request
from storage.db import transaction
from storage.models import Community, OutboxMessage
from tests.e2e.harness import make_settings, running_app
from tests.support.fake_dingtalk import FakeDingtalk, LocalServer, Sent
from tests.support.fake_feishu import FakeFeishu

PUBLIC_URL = "https://linli.example.org"
ORG = "梅园物业服务中心"  # the only organization for environment problems in 桂花社区


class FakeWecomRobot(LocalServer):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.keys: set[str] = set()
        self.sent: list[Sent] = []
        self.calls: list[int] = []
        self._sends: defaultdict[str, list[float]] = defaultdict(list)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/webhook/send", self._send)

    def saturate(self, key: str) -> None:
        """Twenty messages this minute from elsewhere (another process, a person)."""
        self._sends[key] = [self.clock()] * 20

    async def _send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        body = await request.json()
        content = str((body.get("text") or {}).get("content", ""))
        now = self.clock()
        stamps = [s for s in self._sends[key] if s > now - 60]
        if key not in self.keys:
            code, message = 93000, "invalid webhook url"
        elif body.get("msgtype") != "text" or len(content.encode()) > 2048:
            code, message = 40058, "content exceed max length"
        elif len(stamps) >= 20:
            code, message = 45009, "api freq out of limit"
        else:
            code, message = 0, "ok"
            self._sends[key] = [*stamps, now]
            self.sent.append(Sent("robot", key, content, body))
        self.calls.append(code)
        self.changed()
        return self.json({"errcode": code, "errmsg": message})


@dataclass
class Clocks:
    """Wall time for the fakes, monotonic time for the limiter, and the outbox's clock."""

    wall: float = field(default_factory=time.time)
    mono: float = 1000.0
    # Ahead of real time: rows queued with the real time during the test are due at once.
    frozen: clock.FrozenClock = field(
        default_factory=lambda: clock.FrozenClock(datetime.now(UTC) + timedelta(minutes=5))
    )

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds
        self.frozen.advance(seconds=seconds)


@dataclass
class RobotWorld:
    app: Any
    wecom: FakeWecomRobot
    dingtalk: FakeDingtalk
    feishu: FakeFeishu
    clocks: Clocks

    async def deliver(self) -> None:
        await self.app.state.runtime.outbox.drain_once()

    def advance(self, seconds: float) -> None:
        self.clocks.advance(seconds)

    async def route_requests(self, count: int) -> list[int]:
        """``count`` environment problems in 桂花社区, each routed to ORG (one notice each)."""
        ids = []
        async with transaction(self.app.state.runtime.factory) as session:
            community = await session.scalar(select(Community).where(Community.name == "桂花社区"))
            assert community is not None
            for index in range(count):
                intake = Intake(
                    text=f"楼道里的灯坏了，第{index + 1}栋",
                    kind="need",
                    category="environment",
                    predicted_category="environment",
                    confidence=0.9,
                )
                request = await submit_request(
                    session,
                    user_id=None,
                    community_id=community.id,
                    intake=intake,
                    review_threshold=0.35,
                    actor=SYSTEM,
                )
                ids.append(request.id)
        return ids

    async def rows(self, channel: str) -> list[OutboxMessage]:
        async with transaction(self.app.state.runtime.factory) as session:
            stmt = select(OutboxMessage).where(OutboxMessage.channel == channel)
            return list(await session.scalars(stmt.order_by(OutboxMessage.id)))


@asynccontextmanager
async def robot_world(
    database_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[RobotWorld]:
    clocks = Clocks()
    async with AsyncExitStack() as stack:
        wecom = await stack.enter_async_context(FakeWecomRobot(clock=lambda: clocks.wall))
        dingtalk = await stack.enter_async_context(FakeDingtalk(clock=lambda: clocks.wall))
        feishu = await stack.enter_async_context(FakeFeishu(clock=lambda: clocks.wall))
        values: dict[str, Any] = {
            "wecom_api_url": wecom.base_url,
            "dingtalk_oapi_url": dingtalk.base_url,
            "feishu_api_url": feishu.base_url,
            "public_url": PUBLIC_URL,
        }
        settings = make_settings(database_url, data_dir, **(values | overrides))
        app = await stack.enter_async_context(running_app(settings))
        outbox = app.state.runtime.outbox
        outbox.limiter = RateLimiter(clock=lambda: clocks.mono)
        stack.enter_context(clock.use_clock(clocks.frozen))
        yield RobotWorld(app, wecom, dingtalk, feishu, clocks)
