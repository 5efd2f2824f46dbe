"""The MDF journey's open items in a CAM handover (its manifest's `handover_items`): each
request or claim awaiting a decision. They carry no new one-click link: an MDF link is bound to
the submission round the journey keeps in its state, so the receiving CAM decides these in the
workspace (or from the journey's next reminder, which goes to the partner's CAM of the day)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.handover import HandoverItem, HandoverQuery
from journeys.mdf.domain import AWAITING_DECISION, JOURNEY
from journeys.mdf.models import MdfRequest


async def handover_items(session: AsyncSession, query: HandoverQuery) -> list[HandoverItem]:
    requests = (
        await session.scalars(
            select(MdfRequest)
            .where(
                MdfRequest.partner_id.in_(query.partner_ids),
                MdfRequest.state.in_([s.value for s in AWAITING_DECISION]),
            )
            .order_by(MdfRequest.created_at, MdfRequest.id)
        )
    ).all()
    return [
        HandoverItem(
            journey=JOURNEY,
            partner_id=str(r.partner_id),
            what=f"MDF {r.title} ({r.amount_minor / 100:,.2f} {r.currency}): {r.state}, decide in the workspace",
        )
        for r in requests
    ]
