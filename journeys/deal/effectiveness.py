"""The deal journey's figures of a CAM's effectiveness (its manifest's `cam_figures`): how fast the
CAM decides registrations against the policy's SLA (p50/p95 in policy days, the share within the
SLA) and the portfolio's registration discipline (registrations of the window, the share rejected)."""

from __future__ import annotations

from sqlalchemy import Float, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import CamFiguresQuery
from journeys.deal.domain import DealState
from journeys.deal.models import Deal

LABELS = {
    "deal_decision_p50_days": "Deal decisions p50 (days)",
    "deal_decision_p95_days": "Deal decisions p95 (days)",
    "deal_decisions_within_sla": "Deal decisions within SLA",
    "deal_registrations": "Deal registrations",
    "deal_rejected_share": "Deal registrations rejected",
}


async def cam_figures(session: AsyncSession, q: CamFiguresQuery) -> dict[str, float | int | None]:
    days = cast(func.extract("epoch", Deal.decided_at - Deal.created_at), Float) / q.policy.day_seconds
    decided_by_cam = Deal.decided_by == f"cam:{q.cam_id}" if q.cam_id else Deal.decided_by.like("cam:%")
    p50, p95, n, within = (
        await session.execute(
            select(
                func.percentile_cont(0.5).within_group(days),
                func.percentile_cont(0.95).within_group(days),
                func.count(),
                func.count().filter(days <= q.policy.deal.approval_sla_days),
            ).where(
                Deal.partner_id.in_(q.partners),
                decided_by_cam,
                and_(Deal.decided_at >= q.start, Deal.decided_at < q.end),
            )
        )
    ).one()
    registered, rejected = (
        await session.execute(
            select(func.count(), func.count().filter(Deal.state == DealState.rejected.value)).where(
                Deal.partner_id.in_(q.partners), Deal.created_at >= q.start, Deal.created_at < q.end
            )
        )
    ).one()
    return {
        "deal_decision_p50_days": None if p50 is None else round(p50, 2),
        "deal_decision_p95_days": None if p95 is None else round(p95, 2),
        "deal_decisions_within_sla": round(within / n, 4) if n else None,
        "deal_registrations": registered,
        "deal_rejected_share": round(rejected / registered, 4) if registered else None,
    }
