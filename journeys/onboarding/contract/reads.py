"""The onboarding journey's published reads (on the caller's session; plain models out)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.onboarding.contract import Milestone
from journeys.onboarding.models import PartnerMilestone


async def milestones(session: AsyncSession, partner_id: uuid.UUID) -> list[Milestone]:
    """The partner's onboarding milestones, by due date."""
    rows = await session.scalars(
        select(PartnerMilestone)
        .where(PartnerMilestone.partner_id == partner_id)
        .order_by(PartnerMilestone.due_at, PartnerMilestone.key)
    )
    return [Milestone.model_validate(m) for m in rows.all()]
