"""The certification journey's figure of a CAM's effectiveness (its manifest's `cam_figures`):
the share of the portfolio's partners holding an active certification now."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import CamFiguresQuery
from journeys.cert.domain import CertState
from journeys.cert.models import Certification

LABELS = {"certified_share": "Partners certified"}


async def cam_figures(session: AsyncSession, q: CamFiguresQuery) -> dict[str, float | int | None]:
    partners = await session.scalar(select(func.count()).select_from(q.partners.subquery()))
    certified = await session.scalar(
        select(func.count(func.distinct(Certification.partner_id))).where(
            Certification.partner_id.in_(q.partners), Certification.state == CertState.active.value
        )
    )
    return {"certified_share": round((certified or 0) / partners, 4) if partners else None}
