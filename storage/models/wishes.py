"""Claims on 微心愿 from the wish wall: who claimed, until when, and how it was fulfilled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class WishClaim(Base):
    """One claimer's part in a wish; several active claims on one wish make a joint claim."""

    __tablename__ = "wish_claims"
    __table_args__ = (Index("ix_wish_claims_request_status", "request_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    claimer_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    claimer_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    # active | released | fulfilled | confirmed | withdrawn
    status: Mapped[str] = mapped_column(String(12), default="active")
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    fulfilled_at: Mapped[datetime | None]
    proof_note: Mapped[str | None] = mapped_column(Text)
    proof_media: Mapped[str | None] = mapped_column(String(255))
    confirmed_at: Mapped[datetime | None]
    points_txn_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
