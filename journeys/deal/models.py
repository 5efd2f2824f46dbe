"""Tables of the deal registration journey."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _uuid


class Deal(Base):
    """A deal registration. `customer_key`/`customer_name_key` are the normalized customer for
    conflict checks (registrable domain; name without case, punctuation or legal suffix)."""

    __tablename__ = "deals"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_domain: Mapped[str] = mapped_column(String(253))
    customer_key: Mapped[str] = mapped_column(String(253), index=True)
    customer_name_key: Mapped[str] = mapped_column(String(200), index=True)
    product_category: Mapped[str] = mapped_column(String(60))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))  # indexed with the list order (migration 0010)
    conflict_with: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    protected_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    extensions_used: Mapped[int] = mapped_column(Integer, default=0)
    mdf_request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index("ix_deals_created_at_id", "created_at", "id"),
        Index("ix_deals_state_created_at_id", "state", "created_at", "id"),
        Index("ix_deals_approved_protected_until", "protected_until", postgresql_where=text("state = 'approved'")),
    )
    # created_at and updated_at come back with the INSERT (RETURNING): no re-read after registering
    __mapper_args__ = {"eager_defaults": True}
