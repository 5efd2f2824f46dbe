"""Onboarding's signals for partner health (its manifest's `health_signals`): required
milestones past their due date and not done."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.policy import ProgramPolicy
from journeys.health.contract import Signal
from journeys.onboarding.models import PartnerMilestone

# Its event types that move these signals (the required milestones are all done, none overdue): publishing one
# refreshes the partner's health at once (the manifest's `health_events`).
MOVED_BY = frozenset(("partner.activated",))


async def health_signals(
    session: AsyncSession, partner_id: uuid.UUID, now: datetime, policy: ProgramPolicy
) -> list[Signal]:
    rows = await session.scalars(
        select(PartnerMilestone).where(
            PartnerMilestone.partner_id == partner_id,
            PartnerMilestone.required.is_(True),
            PartnerMilestone.done_at.is_(None),
            PartnerMilestone.due_at < now,
        )
    )
    return [
        Signal(
            kind="milestone_overdue",
            key=f"milestone:{m.key}",
            at=m.due_at,
            what=f"onboarding milestone {m.title} overdue since {m.due_at:%Y-%m-%d}",
        )
        for m in rows
    ]
