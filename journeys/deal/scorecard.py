"""The deal journey's figures for the QBR scorecard (its manifest's `scorecard_inputs`): closed-won
revenue, the open pipeline, registrations and their decisions, wins and losses of the window."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import ScorecardQuery
from journeys.deal.domain import OPEN_STATES, DealState
from journeys.deal.models import Deal


async def scorecard_inputs(session: AsyncSession, q: ScorecardQuery) -> dict[str, Any]:
    """Revenue counts closed-won deals in the program's deal currency (others are counted apart)."""
    pid, currency, start, end = q.partner_id, q.policy.deal.currency, q.start, q.end
    won_rows = (
        await session.execute(
            select(Deal.currency, func.count(), func.coalesce(func.sum(Deal.amount_minor), 0))
            .where(Deal.partner_id == pid, Deal.state == DealState.won.value)
            .where(Deal.updated_at >= start, Deal.updated_at < end)
            .group_by(Deal.currency)
        )
    ).all()
    open_count, open_minor = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Deal.amount_minor), 0)).where(
                Deal.partner_id == pid, Deal.currency == currency, Deal.state.in_([s.value for s in OPEN_STATES])
            )
        )
    ).one()
    registered = (
        await session.scalars(
            select(Deal.state).where(Deal.partner_id == pid, Deal.created_at >= start, Deal.created_at < end)
        )
    ).all()
    pending = {DealState.pending_approval.value, DealState.conflict_review.value}
    decided = [s for s in registered if s not in pending]
    closed = (
        await session.scalars(
            select(Deal.state).where(
                Deal.partner_id == pid,
                Deal.state.in_([DealState.won.value, DealState.lost.value]),
                Deal.updated_at >= start,
                Deal.updated_at < end,
            )
        )
    ).all()
    return {
        "revenue_minor": sum(int(total) for cur, _, total in won_rows if cur == currency),
        "revenue_deals": sum(n for cur, n, _ in won_rows if cur == currency),
        "other_currency_deals": sum(n for cur, n, _ in won_rows if cur != currency),
        "pipeline_count": open_count,
        "pipeline_minor": int(open_minor),
        "registrations": len(registered),
        "approved": sum(1 for s in decided if s != DealState.rejected.value),
        "decided": len(decided),
        "won": sum(1 for s in closed if s == DealState.won.value),
        "lost": sum(1 for s in closed if s == DealState.lost.value),
    }
