"""Helpers for the dialog tests: a resident talking through the generic channel, and the
organizer's side done directly with the domain functions (an organizer chat is later)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from community.activities import ActivityDraft, create_activity, publish_activity
from community.audit import Actor
from community.checkin import checkin_code
from storage.db import transaction
from storage.models import (
    Activity,
    Community,
    Identity,
    LedgerTransaction,
    Organization,
    OutboxMessage,
    Redemption,
    Reward,
)
from tests.e2e.harness import find_button
from tests.support.bridge import Bridge

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
THURSDAY_10 = START + timedelta(days=3)


class Resident:
    """One person in the chat: says things, presses buttons, remembers the last answer."""

    def __init__(self, bridge: Bridge, user: str) -> None:
        self.bridge, self.user = bridge, user
        self.replies: list[dict[str, Any]] = []

    async def say(self, text: str) -> str:
        return await self._send(text=text)

    async def press(self, label: str) -> str:
        return await self._send(button=find_button(self.replies, label))

    async def button(self, payload: str) -> str:
        return await self._send(button=payload)

    async def _send(self, **kwargs: Any) -> str:
        self.replies = await self.bridge.say(self.user, **kwargs)
        for reply in self.replies:  # every payload fits Telegram's callback data
            for b in reply["buttons"]:
                assert b["payload"].isascii() and len(b["payload"].encode()) <= 64, b
        return self.text

    @property
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.replies)

    @property
    def labels(self) -> list[str]:
        return [b["text"] for b in self.last_buttons]

    @property
    def last_buttons(self) -> list[dict[str, str]]:
        return next((r["buttons"] for r in reversed(self.replies) if r["buttons"]), [])


async def user_id(app: Any, external_id: str) -> int:
    async with transaction(app.state.runtime.factory) as session:
        found = await session.scalar(
            select(Identity.user_id).where(Identity.external_id == external_id)
        )
        assert found is not None
        return int(found)


async def org_id(app: Any, name: str) -> int:
    async with transaction(app.state.runtime.factory) as session:
        found = await session.scalar(select(Organization.id).where(Organization.name == name))
        assert found is not None
        return int(found)


async def publish(app: Any, org: str, **fields: Any) -> int:
    """An activity in 桂花社区, created and published by ``org`` (the organizer's side)."""
    oid = await org_id(app, org)
    async with transaction(app.state.runtime.factory) as session:
        home = await session.scalar(select(Community.id).where(Community.name == "桂花社区"))
        values: dict[str, Any] = {
            "place": "桂花社区活动室",
            "community_id": home,
            "ends_at": fields["starts_at"] + timedelta(hours=2),
            "points_mode": "fixed",
            "points_rate": 0,
        }
        values.update(fields)
        actor = Actor("org", str(oid))
        activity = await create_activity(
            session, org_id=oid, actor=actor, draft=ActivityDraft(**values)
        )
        await publish_activity(session, activity_id=activity.id, org_id=oid, actor=actor)
        return activity.id


async def code_now(app: Any, activity_id: int) -> str:
    """What the organizer's screen shows right now (the frozen clock)."""
    async with app.state.runtime.factory() as session:
        activity = await session.get(Activity, activity_id)
        assert activity is not None
        return checkin_code(activity)


async def notices_to(app: Any, external_id: str) -> list[str]:
    async with app.state.runtime.factory() as session:
        rows = await session.scalars(
            select(OutboxMessage.text)
            .where(OutboxMessage.target == external_id)
            .order_by(OutboxMessage.id)
        )
        return list(rows)


async def ledger_state(app: Any) -> tuple[int, int, list[int]]:
    """(ledger transactions, redemptions, reward stocks): what a refusal must leave alone."""
    async with app.state.runtime.factory() as session:
        txns = await session.scalar(select(func.count()).select_from(LedgerTransaction))
        redemptions = await session.scalar(select(func.count()).select_from(Redemption))
        stocks = list(await session.scalars(select(Reward.stock).order_by(Reward.id)))
        return int(txns or 0), int(redemptions or 0), stocks
