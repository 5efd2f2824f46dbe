"""Tables of the quarterly business review journey: targets, scorecard snapshots (with their
inputs), the QBR of a partner and period (meeting, notes), its action items, and tier reviews."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


def _partner_fk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True)


class QbrTarget(Base):
    """A partner's revenue target for a period, set by ops or its CAM (else the tier's default)."""

    __tablename__ = "qbr_targets"

    partner_id: Mapped[uuid.UUID] = _partner_fk()
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    set_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class QbrScorecard(Base):
    """The scorecard snapshot of a partner and period, with everything it was computed from."""

    __tablename__ = "qbr_scorecards"

    partner_id: Mapped[uuid.UUID] = _partner_fk()
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20), index=True)
    cam_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True, index=True)
    score: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(10), index=True)
    trend: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[list[Any]] = mapped_column(JSONB)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    actions: Mapped[list[Any]] = mapped_column(JSONB)
    review: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    policy_version: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Qbr(Base):
    """The QBR of a partner and period: its state, the meeting (the invite's UID and sequence)
    and the notes."""

    __tablename__ = "qbrs"

    partner_id: Mapped[uuid.UUID] = _partner_fk()
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    meeting_uid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    meeting_sequence: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    scheduled_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ics: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class QbrActionItem(Base):
    """An action item agreed at a QBR: chased by reminders, escalated when overdue."""

    __tablename__ = "qbr_action_items"

    partner_id: Mapped[uuid.UUID] = _partner_fk()
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    item_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(10))
    due: Mapped[date] = mapped_column(Date, index=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    done_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class QbrTierReview(Base):
    """The tier review of a partner and period: the recommendation with its reasons, the
    decision, a remediation period and its recheck."""

    __tablename__ = "qbr_tier_reviews"

    partner_id: Mapped[uuid.UUID] = _partner_fk()
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    from_tier: Mapped[str] = mapped_column(String(20))
    recommendation: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(20), index=True)
    decided: Mapped[str | None] = mapped_column(String(10), nullable=True)
    to_tier: Mapped[str | None] = mapped_column(String(20), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    remediation_ends: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recheck: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
