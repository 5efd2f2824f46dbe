"""The onboarding journey's figures for the QBR scorecard (its manifest's `scorecard_inputs`): the
state the partner's onboarding reached and its required milestones overdue at the window's end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import ScorecardQuery
from journeys.onboarding.models import PartnerMilestone
from store.models import Partner


async def scorecard_inputs(session: AsyncSession, q: ScorecardQuery) -> dict[str, Any]:
    overdue = await session.scalar(
        select(func.count()).where(
            PartnerMilestone.partner_id == q.partner_id,
            PartnerMilestone.required.is_(True),
            PartnerMilestone.done_at.is_(None),
            PartnerMilestone.due_at < q.end,
        )
    )
    return {
        "onboarding_state": await session.scalar(select(Partner.status).where(Partner.id == q.partner_id)),
        "overdue_milestones": overdue or 0,
    }
