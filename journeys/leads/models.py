"""Tables of the lead distribution journey: leads, their offers (the routing path), the
partners' lead preferences (the one-click links used are the platform's `used_links`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _uuid


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    company: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(253), index=True)
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(320))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(60), default="")
    product_category: Mapped[str] = mapped_column(String(60))
    value_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    source: Mapped[str] = mapped_column(String(100), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), index=True)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True, nullable=True)
    deal_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    routing: Mapped[list[Any]] = mapped_column(JSONB, default=list)  # every pick, with its reasons
    policy_version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    # Its journey's start (no `journeys` row: that needs a partner): what the reconciler starts
    # it with while Temporal has not confirmed it (`started_at` None).
    start_input: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    task_queue: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index("ix_leads_created_at_id", "created_at", "id"),
        Index(
            "ix_leads_unstarted", "created_at", postgresql_where=text("started_at IS NULL AND start_input IS NOT NULL")
        ),
    )


class LeadOffer(Base):
    """One offer of a lead to one partner: the routing path, in offer order."""

    __tablename__ = "lead_offers"

    lead_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    offer_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"))
    rule: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reasons: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    state: Mapped[str] = mapped_column(String(20))
    offered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    remind_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    step_key: Mapped[str] = mapped_column(String(250), index=True)

    __table_args__ = (
        # routing's per-partner aggregate reads only the index (migration leads_0003)
        Index("ix_lead_offers_partner_state", "partner_id", "state", postgresql_include=["offered_at", "answered_at"]),
        Index("ix_lead_offers_live_expires", "expires_at", postgresql_where=text("state = 'live'")),
    )


class LeadPreference(Base):
    """A partner's lead preferences: whether it takes leads, where and what, how many at once."""

    __tablename__ = "lead_preferences"

    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    accepting: Mapped[bool] = mapped_column(Boolean, default=True)
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    countries: Mapped[list[str]] = mapped_column(ARRAY(String(2)), default=list)
    regions: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    time_zone: Mapped[str | None] = mapped_column(String(60), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    # routing finds the partners whose territories name the lead's country (migration leads_0003)
    __table_args__ = (Index("ix_lead_preferences_countries", "countries", postgresql_using="gin"),)


class LeadPartnerStats(Base):
    """A partner's offers summed up: what routing reads for every candidate instead of adding up
    each one's offers. Rewritten from the partner's offers by the activities that write them, in
    their transaction (`activities.refresh_stats`); migration leads_0003 filled it."""

    __tablename__ = "lead_partner_stats"

    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    live: Mapped[int] = mapped_column(Integer, default=0)  # its load against its capacity
    accepted: Mapped[int] = mapped_column(Integer, default=0)  # offers it accepted (and kept)
    answered: Mapped[int] = mapped_column(Integer, default=0)  # accepted, declined or expired
    last_offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
