"""Broadcasts (one notice to many residents), one-time link codes and scheduler leases.

A broadcast's fan-out writes one outbox row per recipient in chunks, remembering the last
user id done (``fanout_cursor``) so a crash resumes where it stopped; the outbox's unique
dedupe key makes a repeated chunk harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class Broadcast(Base):
    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # activity_published | activity_changed | activity_cancelled | announcement
    kind: Mapped[str] = mapped_column(String(24))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[Any]] = mapped_column(default=list)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)  # how recipients were chosen
    status: Mapped[str] = mapped_column(
        String(12), default="planning"
    )  # planning|sending|done|cancelled
    total: Mapped[int] = mapped_column(Integer, default=0)
    fanout_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class LinkCode(Base):
    """A short one-time code: bind a second channel (绑定) or confirm a family link."""

    __tablename__ = "link_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # bind | family
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Lease(Base):
    """A named, expiring lock: only the holder runs the scheduler (leader election)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
