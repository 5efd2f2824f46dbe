"""The leads journey's figures for the QBR scorecard (its manifest's `scorecard_inputs`): the
partner's lead offers answered or expired in the window, how many it accepted, the median time
from offer to acceptance, and how many of the leads it accepted were converted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import ScorecardQuery
from journeys.leads.domain import LeadState, OfferState
from journeys.leads.models import Lead, LeadOffer

CLOSED = (OfferState.accepted, OfferState.declined, OfferState.expired, OfferState.returned)


async def scorecard_inputs(session: AsyncSession, q: ScorecardQuery) -> dict[str, Any]:
    """No offer answered or expired in the window: `leads` None (the metric is not listed). An
    offer handed back after its acceptance counts as accepted (its acceptance time is not kept:
    the median is over the offers still accepted)."""
    o = LeadOffer
    accepted = o.state.in_([OfferState.accepted.value, OfferState.returned.value])
    hours = func.extract("epoch", o.answered_at - o.offered_at) / 3600
    offers, taken, median, converted = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(accepted),
                func.percentile_cont(0.5).within_group(hours).filter(o.state == OfferState.accepted.value),
                func.count().filter(
                    and_(o.state == OfferState.accepted.value, Lead.state == LeadState.converted.value)
                ),
            )
            .join(Lead, Lead.id == o.lead_id)
            .where(
                o.partner_id == q.partner_id,
                o.state.in_([s.value for s in CLOSED]),
                o.answered_at >= q.start,
                o.answered_at < q.end,
            )
        )
    ).one()
    if not offers:
        return {"leads": None}
    return {
        "leads": {
            "offers": offers,
            "accepted": taken,
            "median_hours_to_accept": round(float(median), 2) if median is not None else None,
            "converted": converted,
        }
    }
