"""The QBR journey's figure of a CAM's effectiveness (its manifest's `cam_figures`): completion,
the portfolio's QBRs done over those done or missed, settled within the window."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import CamFiguresQuery
from journeys.qbr.domain import QbrState
from journeys.qbr.models import Qbr

LABELS = {"qbr_completion": "QBR completion"}


async def cam_figures(session: AsyncSession, q: CamFiguresQuery) -> dict[str, float | int | None]:
    done, settled = (
        await session.execute(
            select(func.count().filter(Qbr.state == QbrState.done.value), func.count()).where(
                Qbr.partner_id.in_(q.partners),
                Qbr.state.in_([QbrState.done.value, QbrState.missed.value]),
                Qbr.updated_at >= q.start,
                Qbr.updated_at < q.end,
            )
        )
    ).one()
    return {"qbr_completion": round(done / settled, 4) if settled else None}
