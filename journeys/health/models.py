"""Tables of partner health: every score change with its contributions (the trend and the
explanation), and the early-warning episodes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


class HealthScore(Base):
    """One evaluation that changed the score (or the first): the score, its band, every
    contribution (they sum to the score) and what changed since the row before."""

    __tablename__ = "health_scores"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(10))
    contributions: Mapped[list[Any]] = mapped_column(JSONB)
    changes: Mapped[list[Any]] = mapped_column(JSONB)
    policy_version: Mapped[int] = mapped_column(Integer)


class HealthEpisode(Base):
    """An early-warning episode: opened with its alert, closed when the partner is healthy again."""

    __tablename__ = "health_episodes"

    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    episode: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class HealthReengagement(Base):
    """A dark spell of a partner without a CAM: its re-engagement emails, whether ops was told
    (Today shows it until the partner acts) and when it ended."""

    __tablename__ = "health_reengagements"

    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    spell: Mapped[int] = mapped_column(Integer, primary_key=True)
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    emails: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    last_step: Mapped[str] = mapped_column(Text, server_default="", default="")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
