"""The deal journey's open items in a CAM handover (its manifest's `handover_items`): each
registration awaiting a decision (with the receiving CAM's new approve / reject links while it
awaits approval; a conflict review is decided in the workspace), the old
CAM's links answering 410 once the partner's CAM changed (api/links.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import actors
from domain.handover import HandoverItem, HandoverQuery
from domain.links import link_jti
from journeys.deal.domain import AWAITING_DECISION, JOURNEY, DealState, Decision
from journeys.deal.links import DECISION, DealLinkClaims
from journeys.deal.models import Deal


async def handover_items(session: AsyncSession, query: HandoverQuery) -> list[HandoverItem]:
    deals = (
        await session.scalars(
            select(Deal)
            .where(Deal.partner_id.in_(query.partner_ids), Deal.state.in_([s.value for s in AWAITING_DECISION]))
            .order_by(Deal.created_at, Deal.id)
        )
    ).all()
    approver = actors.cam(query.cam_id)
    valid_until = query.now + query.policy.days(query.policy.deal.decision_link_days)
    items = []
    for deal in deals:
        claims = {
            d.value: DealLinkClaims(
                deal_id=str(deal.id),
                decision=d.value,
                approver=approver,
                jti=link_jti(query.key, str(deal.id), d.value),
                expires_at=valid_until,
            )
            for d in Decision
            if deal.state == DealState.pending_approval
        }
        links = query.links(DECISION, claims)
        amount = f"{deal.amount_minor / 100:,.2f} {deal.currency}"
        what = f"deal registration {deal.customer_name} ({amount}, {deal.product_category}): {deal.state}"
        items.append(HandoverItem(journey=JOURNEY, partner_id=str(deal.partner_id), what=what, links=links))
    return items
