"""Bodies of the partner health endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from journeys.health.domain import Contribution, HealthBand


class HealthPoint(BaseModel):
    at: datetime
    score: int
    band: HealthBand
    changes: list[str] = Field(description='what moved it, e.g. "\u221212: certification X lapsed on 2027-03-02"')


class EpisodeOut(BaseModel):
    episode: int
    reason: str
    opened_at: datetime
    closed_at: datetime | None = None


class HealthOut(BaseModel):
    partner_id: uuid.UUID
    score: int | None = Field(description="0..100; null until the first evaluation")
    band: HealthBand | None = None
    at: datetime | None = Field(None, description="when the score last changed")
    contributions: list[Contribution] = Field(description="baseline 100 and every signal's points: they sum to score")
    trend: list[HealthPoint] = Field(description="every change within the policy's `health.trend_days`, oldest first")
    alerting: EpisodeOut | None = Field(None, description="the open early-warning episode, if any")
