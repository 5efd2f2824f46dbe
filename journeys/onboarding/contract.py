"""What the platform and other journeys may use of onboarding (nothing else of it is imported
from outside): its name, how enrolment starts it, and a partner's milestones."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.onboarding.domain import JOURNEY, OnboardingInput, OnboardingState
from journeys.onboarding.models import PartnerMilestone

__all__ = ["JOURNEY", "START_STATE", "Milestone", "StartInput", "milestones"]

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


async def milestones(session: AsyncSession, partner_id: uuid.UUID) -> list[Milestone]:
    """The partner's onboarding milestones, by due date."""
    rows = await session.scalars(
        select(PartnerMilestone)
        .where(PartnerMilestone.partner_id == partner_id)
        .order_by(PartnerMilestone.due_at, PartnerMilestone.key)
    )
    return [Milestone.model_validate(m) for m in rows.all()]
