"""Contracts of the onboarding journey (`onboarding-{partner_id}`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.enums import Tier
from domain.journeys import Coverage, NotifyInput, workflow_id

JOURNEY = "onboarding"

# Messages (besides the shared CHANGE_COVERAGE and PROGRESS).
MARK_MILESTONE = "mark_milestone"  # signal: a fact from another journey (fire and forget)
REPORT_MILESTONE = "report_milestone"  # update: a report from the API, answered once recorded


class OnboardingActivity:
    """Activity names of this journey."""

    OPEN_PLAN = "onboarding.open_plan"
    RECORD_MILESTONE = "onboarding.record_milestone"
    FINISH = "onboarding.finish"
    # The outcome and the email that tells it, in one step (kit generation 12).
    FINISH_AND_NOTIFY = "onboarding.finish_and_notify"


LEGACY_ACTIVITY_NAMES = {
    OnboardingActivity.OPEN_PLAN: "open_onboarding_plan",
    OnboardingActivity.RECORD_MILESTONE: "record_milestone",
    OnboardingActivity.FINISH: "finish_onboarding",
}


class OnboardingState(StrEnum):
    in_progress = "in_progress"
    activated = "activated"
    at_risk = "at_risk"


class OnboardingInput(BaseModel):
    partner_id: str
    partner_name: str
    coverage: Coverage
    policy_version: int | None = None  # None: the current version when the journey starts


class MilestoneDone(BaseModel):
    """Signal or update: a milestone was completed (reported through the API or by another journey)."""

    key: str
    by: str = Field(description="an actor (domain/actors.py): 'partner:<id>', 'cam:<id>', 'journey:deal-..'")


class MilestoneReport(BaseModel):
    """Answer to a milestone report: recorded now, or done before."""

    partner_id: str
    milestone: str
    accepted: bool
    already_done: bool


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


class FinishOnboardingNotice(BaseModel):
    """The outcome (`record`) and the email that tells it (`notice`, with the events it carries),
    recorded and queued in one transaction, then sent (kit generation 12)."""

    record: FinishOnboardingInput
    notice: NotifyInput


def milestone_done(partner_id: str, key: str, by: str) -> tuple[str, str, MilestoneDone]:
    """How another journey tells `onboarding-{partner_id}` a milestone is done: (workflow id,
    signal name, argument), for `JourneyKit.tell`."""
    return workflow_id(JOURNEY, partner_id), MARK_MILESTONE, MilestoneDone(key=key, by=by)


def describe(inp: OnboardingInput) -> tuple[str, str]:
    """The journey's static summary and details in the Temporal Web UI (encrypted by the codec)."""
    cam = f"CAM {inp.coverage.cam_id}" if inp.coverage.cam_id else "no CAM"
    return (
        f"Onboarding: {inp.partner_name} ({inp.coverage.tier.value}, {cam})",
        f"**Partner** {inp.partner_id}  \n**Policy version** {inp.policy_version or 'current at start'}",
    )
