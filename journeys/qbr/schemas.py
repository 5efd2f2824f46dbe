"""Bodies of the QBR endpoints: scorecards, targets, the cycle, the meeting, notes and action
items, and tier decisions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import JSON_NUMBER, IsoDate, IsoDatetime, Name, Reason, Strict
from domain.enums import Tier
from journeys.qbr.domain import Meeting, Owner
from journeys.qbr.periods import PERIOD
from journeys.qbr.scoring import Band

PeriodField = Field(pattern=PERIOD, description="a quarter, e.g. 2027-Q1", examples=["2027-Q1"])


class ScorecardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    partner_id: uuid.UUID
    period: str
    tier: Tier
    cam_id: uuid.UUID | None
    score: float
    band: Band
    trend: float | None
    percentile: float | None = Field(None, description="within the tier for the period (ties share a percentile)")
    metrics: list[dict[str, Any]]
    inputs: dict[str, Any] = Field(description="every figure the scorecard was computed from")
    actions: list[str]
    review: dict[str, Any] | None
    policy_version: int
    computed_at: datetime


class TargetBody(Strict):
    amount_minor: Annotated[
        int,
        Field(
            ge=0,
            le=10**15,
            description="the quarter's revenue target, minor units "
            "of the program currency (0: no target, the revenue metric is not scored)",
        ),
        JSON_NUMBER,
    ]


class TargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    partner_id: uuid.UUID
    period: str
    amount_minor: int
    currency: str
    set_by: str
    updated_at: datetime


class CycleBody(Strict):
    period: str = PeriodField


class CycleStarted(BaseModel):
    period: str
    workflow_id: str
    started: bool = Field(description="false: the period's cycle already existed and nothing was started")


class CycleOut(BaseModel):
    period: str
    workflow_id: str
    status: str = Field(description="the cycle workflow's status (RUNNING, COMPLETED, ...) or NONE")
    started: int | None = None
    prepared: int | None = None
    existing: int | None = None
    in_flight: int | None = None
    max_in_flight: int | None = None
    pages: int | None = None
    by_state: dict[str, int] = Field(description="the period's partner QBRs, counted by state")


class MeetingBody(Strict):
    starts_at: IsoDatetime = Field(description="with a time zone, in the future")
    duration_minutes: Annotated[int, Field(ge=15, le=480), JSON_NUMBER] = 60


class ActionItemBody(Strict):
    title: Name
    owner: Owner
    due: IsoDate = Field(description="today or later")


class NotesBody(Strict):
    notes: Reason
    action_items: list[ActionItemBody] = Field(default_factory=list, max_length=50)


class ActionItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    partner_id: uuid.UUID
    period: str
    item_no: int
    title: str
    owner: Owner
    due: date
    done_at: datetime | None
    done_by: str | None
    cancelled_at: datetime | None


class ActionItemEditBody(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: Name | None = None
    owner: Owner | None = None
    due: IsoDate | None = Field(None, description="today or later")


class TierDecisionBody(Strict):
    approve: bool = Field(description="true: the recommendation applies; false: override with to_tier (or hold)")
    to_tier: Tier | None = None
    reason: Reason = Field("", description="required for an override")
    cam_id: uuid.UUID | None = Field(None, description="the CAM of a partner promoted into a tier that needs one")


class TierReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    partner_id: uuid.UUID
    period: str
    from_tier: Tier
    recommendation: str
    reasons: list[str]
    state: str
    decided: str | None
    to_tier: Tier | None
    decided_by: str | None
    reason: str | None
    remediation_ends: datetime | None
    updated_at: datetime


class QbrOut(BaseModel):
    partner_id: uuid.UUID
    period: str
    state: str
    meeting: Meeting | None
    notes: str | None
    action_items: list[ActionItemOut]
    review: TierReviewOut | None
    scorecard: ScorecardOut | None
