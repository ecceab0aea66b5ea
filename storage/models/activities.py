"""Volunteer activities, sign-ups with a waiting list, and residents' notice preferences.

A sign-up row is kept when cancelled (its history matters for no-show records); re-signing
reuses it with a new ``queued_at`` so the waiting list stays first come, first served.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_status_starts", "status", "starts_at"),
        Index("ix_activities_community_starts", "community_id", "starts_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    signup_deadline: Mapped[datetime | None]
    capacity: Mapped[int | None] = mapped_column(Integer)  # None = no limit
    points_mode: Mapped[str] = mapped_column(String(8), default="hourly")  # hourly | fixed
    points_rate: Mapped[int] = mapped_column(Integer, default=0)  # per hour, or the fixed sum
    # draft | published | cancelled | finished (attendance confirmed, points posted)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every change notice
    checkin_secret: Mapped[str] = mapped_column(String(64))  # TOTP seed of the rotating code
    created_by: Mapped[str] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ActivitySignup(Base):
    __tablename__ = "activity_signups"
    __table_args__ = (
        UniqueConstraint("activity_id", "user_id"),
        Index("ix_activity_signups_queue", "activity_id", "status", "queued_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12))  # confirmed | waitlist | cancelled
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    checkin_method: Mapped[str | None] = mapped_column(String(12))  # code | qr | organizer
    attendance: Mapped[str | None] = mapped_column(String(10))  # attended | no_show
    hours: Mapped[float | None]
    points_txn_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    reminded_24h_at: Mapped[datetime | None]
    reminded_1h_at: Mapped[datetime | None]
    notified_version: Mapped[int] = mapped_column(Integer, default=0)


class Subscription(Base):
    """What a resident wants notices about: a category or a community (one row each)."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_scope_value", "scope", "value"),)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(12), primary_key=True)  # category | community
    value: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NoticePrefs(Base):
    """Quiet hours and the 退订 switch; a missing row means the defaults (21:00–08:00, on)."""

    __tablename__ = "notice_prefs"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    quiet_start: Mapped[int] = mapped_column(Integer, default=21 * 60)  # minutes after midnight
    quiet_end: Mapped[int] = mapped_column(Integer, default=8 * 60)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)  # 退订: no notices at all
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
