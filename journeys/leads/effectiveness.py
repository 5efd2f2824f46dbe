"""The leads journey's figure of a CAM's effectiveness (its manifest's `cam_figures`): lead
acceptance, the offers to the portfolio's partners made within the window that they accepted,
over those they answered or let expire."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import CamFiguresQuery
from journeys.leads.domain import OfferState
from journeys.leads.models import LeadOffer

LABELS = {"lead_acceptance": "Lead acceptance"}
ACCEPTED = (OfferState.accepted.value, OfferState.returned.value)
SETTLED = (*ACCEPTED, OfferState.declined.value, OfferState.expired.value)


async def cam_figures(session: AsyncSession, q: CamFiguresQuery) -> dict[str, float | int | None]:
    accepted, settled = (
        await session.execute(
            select(func.count().filter(LeadOffer.state.in_(ACCEPTED)), func.count()).where(
                LeadOffer.partner_id.in_(q.partners),
                LeadOffer.state.in_(SETTLED),
                LeadOffer.offered_at >= q.start,
                LeadOffer.offered_at < q.end,
            )
        )
    ).one()
    return {"lead_acceptance": round(accepted / settled, 4) if settled else None}
