"""Failure limits shared by every API process (api/ratelimit.py): one row per limited key (a
client address, an email address), its failures in the current window and when the window began."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


class RateLimit(Base):
    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)  # "<limit>:<client or address>"
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    hits: Mapped[int] = mapped_column(Integer)
