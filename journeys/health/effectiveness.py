"""Partner health's figures of a CAM's effectiveness (its manifest's `cam_figures`): the
portfolio's average health at the end of the window and its trend (that less the average at the
window's start, over the partners scored at both)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import CamFiguresQuery
from journeys.health.models import HealthScore

LABELS = {"health_average": "Portfolio health", "health_trend": "Portfolio health trend"}


async def _scores(session: AsyncSession, q: CamFiguresQuery, at: datetime) -> dict:
    """Each partner's latest score before `at`."""
    latest = (
        select(func.max(HealthScore.id))
        .where(HealthScore.partner_id.in_(q.partners), HealthScore.at < at)
        .group_by(HealthScore.partner_id)
    )
    rows = await session.execute(select(HealthScore.partner_id, HealthScore.score).where(HealthScore.id.in_(latest)))
    return {partner: score for partner, score in rows.all()}


async def cam_figures(session: AsyncSession, q: CamFiguresQuery) -> dict[str, float | int | None]:
    end, start = await _scores(session, q, q.end), await _scores(session, q, q.start)
    both = [p for p in end if p in start]
    return {
        "health_average": round(sum(end.values()) / len(end), 2) if end else None,
        "health_trend": round(sum(end[p] - start[p] for p in both) / len(both), 2) if both else None,
    }
