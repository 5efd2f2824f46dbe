"""What ops watch, indexed: a step that is being retried (its second attempt or later has begun),
recorded by the worker and removed when the step succeeds. `GET /ops/retrying` reads its
candidates here and asks Temporal for the rest (attempts, last error), so a stuck journey is found
among any number of running ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


class RetryingStep(Base):
    __tablename__ = "retrying_steps"

    workflow_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    activity: Mapped[str] = mapped_column(String(200))
    failing_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # first scheduled
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
