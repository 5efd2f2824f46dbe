"""The MDF journey's figure of a CAM's effectiveness (its manifest's `cam_figures`): utilization,
the money paid out of the portfolio's funds running within the window over the money they were
given (allocations, accruals and adjustments)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import CamFiguresQuery
from journeys.mdf.domain import EntryKind
from journeys.mdf.models import MdfEntry, MdfFund

LABELS = {"mdf_utilization": "MDF utilization"}
GIVEN = (EntryKind.allocation.value, EntryKind.accrual.value, EntryKind.adjustment.value)


async def cam_figures(session: AsyncSession, q: CamFiguresQuery) -> dict[str, float | int | None]:
    funds = select(MdfFund.id).where(
        MdfFund.partner_id.in_(q.partners), MdfFund.starts_at < q.end, MdfFund.ends_at >= q.start
    )
    given, paid = (
        await session.execute(
            select(
                func.coalesce(func.sum(MdfEntry.amount_minor).filter(MdfEntry.kind.in_(GIVEN)), 0),
                func.coalesce(func.sum(MdfEntry.amount_minor).filter(MdfEntry.kind == EntryKind.payment.value), 0),
            ).where(MdfEntry.fund_id.in_(funds))
        )
    ).one()
    return {"mdf_utilization": round(abs(paid) / given, 4) if given > 0 else None}
