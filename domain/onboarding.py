"""Contracts of the onboarding journey (`onboarding-{partner_id}`)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.enums import OnboardingState, Tier
from domain.journeys import Coverage


class OnboardingInput(BaseModel):
    partner_id: str
    partner_name: str
    coverage: Coverage
    policy_version: int | None = None  # None: the current version when the journey starts


class MilestoneDone(BaseModel):
    """Signal: a milestone was completed (sent by the API or by another journey)."""

    key: str
    by: str = Field(description="who reported it, e.g. 'partner:<id>', 'cam:<id>', 'journey:deal-..'")


class MilestoneProgress(BaseModel):
    key: str
    title: str
    required: bool
    due_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    nudged: bool = False
    escalated: bool = False


class OnboardingProgress(BaseModel):
    """Query result: the live state of the journey."""

    partner_id: str
    state: OnboardingState
    tier: Tier
    cam_id: str | None
    policy_version: int
    started_at: datetime
    ends_at: datetime
    milestones: list[MilestoneProgress]


class OnboardingResult(BaseModel):
    partner_id: str
    state: OnboardingState
    completed: list[str]
    missing: list[str]


class OpenPlanInput(BaseModel):
    """Write the partner's milestone plan (due dates) into the read model."""

    idempotency_key: str
    partner_id: str
    policy_version: int
    milestones: list[MilestoneProgress]


class RecordMilestoneInput(BaseModel):
    idempotency_key: str
    partner_id: str
    key: str
    by: str
    at: datetime


class FinishOnboardingInput(BaseModel):
    """Set the partner status at the end of the journey (active or at_risk)."""

    idempotency_key: str
    partner_id: str
    state: OnboardingState
    at: datetime

