"""The MDF journey's figures for the QBR scorecard (its manifest's `scorecard_inputs`): the
partner's fund of the period, read from the ledger, and the revenue of the deals its requests sourced."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import ScorecardQuery
from journeys.deal import contract as deal
from journeys.mdf import ledger
from journeys.mdf.models import MdfFund, MdfRequest


async def scorecard_inputs(session: AsyncSession, q: ScorecardQuery) -> dict[str, Any]:
    """Every balance a sum of ledger entries. No fund for the period: the metric is absent
    (`mdf` None, not zero), and the scorecard re-weights."""
    fund = await session.scalar(select(MdfFund).where(MdfFund.partner_id == q.partner_id, MdfFund.period == q.period))
    if fund is None:
        return {"mdf": None}
    b = await ledger.fund_balances(session, fund.id)
    won = deal.won_by_mdf_request()
    revenue = await session.scalar(
        select(func.coalesce(func.sum(won.c.won), 0))
        .select_from(won)
        .join(MdfRequest, MdfRequest.id == won.c.mdf_request_id)
        .where(MdfRequest.fund_id == fund.id)
    )
    return {
        "mdf": {
            "currency": fund.currency,
            "allocated_minor": b.funded,
            "claimed_minor": b.claimed,
            "unclaimed_minor": max(b.available, 0) if b.expired == 0 else 0,
            "claim_deadline": fund.expires_at.date(),
            "attributed_revenue_minor": int(revenue or 0),
        }
    }
