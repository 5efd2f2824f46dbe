"""What other journeys and the platform may use of the onboarding journey (nothing else of it is
imported from outside): its name, how enrolment starts it, how to tell it a milestone is done (its
signal, named here once) and the shape of a milestone. Imported by other journeys' workflows, so
this module stays pure: no database, no I/O. Its reads of the database are in `contract/reads.py`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from journeys.onboarding.domain import (
    JOURNEY,
    MARK_MILESTONE,
    MilestoneDone,
    OnboardingInput,
    OnboardingState,
    milestone_done,
)
from journeys.onboarding.events import PartnerEvent  # partner.*: health's early warning publishes partner.at_risk

__all__ = [
    "FIRST_CERTIFICATION",
    "FIRST_DEAL",
    "JOURNEY",
    "MARK_MILESTONE",
    "PORTAL_ACCESS",
    "START_STATE",
    "Milestone",
    "MilestoneDone",
    "PartnerEvent",
    "StartInput",
    "milestone_done",
]

FIRST_DEAL = "first_deal"  # the milestone the deal journey reports at a partner's first registration
FIRST_CERTIFICATION = "first_certification"  # the one the cert journey reports at a first certification
PORTAL_ACCESS = "portal_access"  # the one the partner portal reports at a partner user's first sign-in

StartInput = OnboardingInput  # the workflow's input when a partner is enrolled
START_STATE = OnboardingState.in_progress.value  # the journey's state when it starts


class Milestone(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    title: str
    required: bool
    due_at: datetime
    done_at: datetime | None
    done_by: str | None
