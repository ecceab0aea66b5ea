"""Time-bank points as a double-entry ledger, the reward catalog and redemptions.

Entries are immutable and every transaction's entries sum to zero; ``balance`` on the account
row is a cache kept in the same transaction (a conditional UPDATE on it is what prevents an
overdraft under concurrency) and is checked against the sum of entries by the tests.
Accounts outlive an erased resident (``user_id`` set NULL) so points never vanish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # user:12 | org:3 | pool:5 | …
    kind: Mapped[str] = mapped_column(String(16))  # resident | org | pool | rewards | system
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)  # issuing accounts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (Index("ix_ledger_transactions_ref", "ref_type", "ref_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    # earn | spend | transfer | reversal | adjustment | grant
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    ref_type: Mapped[str | None] = mapped_column(String(16))  # activity | wish | redemption …
    ref_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account", "account_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed; a transaction's amounts sum to 0
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reward(Base):
    """Something points buy: an item (礼品) or a service, from a provider, with a stock."""

    __tablename__ = "rewards"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(8), default="item")  # item | service
    provider_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    price: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Redemption(Base):
    __tablename__ = "redemptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    pickup_code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="issued")  # issued|fulfilled|cancelled
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fulfilled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class FamilyLink(Base):
    """Family members a resident may give points to (转赠), confirmed by the relative's code."""

    __tablename__ = "family_links"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    relative_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    """A numbered 志愿服务证明: a frozen snapshot of verified hours at issue time."""

    __tablename__ = "certificates"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    holder_name: Mapped[str] = mapped_column(String(64))
    issuer_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    hours: Mapped[float]
    records: Mapped[list[Any]] = mapped_column(default=list)  # one dict per verified activity
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
