"""Tables of the market development funds journey: funds (one per partner and period), the
ledger of every money movement, requests, and proof-of-performance files."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _uuid


class MdfFund(Base):
    """A partner's fund for one period. It stores no balance: balances are sums of its entries."""

    __tablename__ = "mdf_funds"
    __table_args__ = (UniqueConstraint("partner_id", "period"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    period: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


ENTRY_KINDS = (
    "allocation",
    "accrual",
    "adjustment",
    "reservation",
    "release",
    "payment",
    "expiry",
    "clawback",
    "claim",
)


class MdfEntry(Base):
    """One ledger entry. Amounts are positive minor units of the fund's currency, except an
    adjustment (signed, never zero); the kind says which way the money moves."""

    __tablename__ = "mdf_entries"
    __table_args__ = (
        CheckConstraint(f"kind in ({', '.join(repr(k) for k in ENTRY_KINDS)})", name="mdf_entries_kind"),
        CheckConstraint("amount_minor > 0 or (kind = 'adjustment' and amount_minor <> 0)", name="mdf_entries_amount"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    fund_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("mdf_funds.id", ondelete="CASCADE"), index=True
    )
    partner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("mdf_requests.id", ondelete="CASCADE"), index=True, nullable=True
    )  # a request removed by a refused start takes its reservation with it
    kind: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MdfRequest(Base):
    __tablename__ = "mdf_requests"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    fund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("mdf_funds.id"), index=True)
    period: Mapped[str] = mapped_column(String(10), index=True)
    activity_type: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    planned_start: Mapped[date] = mapped_column(Date)
    planned_end: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    requested_amount_minor: Mapped[int] = mapped_column(BigInteger)
    requested_currency: Mapped[str] = mapped_column(String(3))
    exchange_rate: Mapped[str | None] = mapped_column(String(30), nullable=True)
    partner_share_percent: Mapped[float] = mapped_column(Numeric(5, 2, asdecimal=False))
    expected_outcomes: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), index=True)
    awaiting_level: Mapped[int | None] = mapped_column(Integer, nullable=True)  # index of the level to decide
    approved_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    claim_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    approved_claim_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class MdfProof(Base):
    """A proof-of-performance file: its bytes in PostgreSQL (`data`) or in the S3-compatible store
    (`storage_key`), its SHA-256 either way."""

    __tablename__ = "mdf_proofs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    request_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("mdf_requests.id", ondelete="CASCADE"), index=True
    )
    partner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(10), default="db")
    storage_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
