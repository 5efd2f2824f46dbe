"""Partner health in a CAM handover (its manifest's `handover_items`): each partner's latest
score and band, on its line of the receiving CAM's handover pack, with the last change's reasons."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from domain.handover import HandoverItem, HandoverQuery
from journeys.health.domain import JOURNEY
from journeys.health.models import HealthScore


async def handover_items(session: AsyncSession, query: HandoverQuery) -> list[HandoverItem]:
    latest = (
        await session.scalars(
            select(HealthScore)
            .where(HealthScore.partner_id.in_(query.partner_ids))
            .order_by(HealthScore.partner_id, HealthScore.at.desc(), HealthScore.id.desc())
            .ext(distinct_on(HealthScore.partner_id))
        )
    ).all()
    return [
        HandoverItem(
            journey=JOURNEY,
            partner_id=str(score.partner_id),
            kind="status",
            what=f"health {score.score} ({score.band})",
        )
        for score in latest
    ]
