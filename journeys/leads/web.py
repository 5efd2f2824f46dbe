"""Today's lead items: offers to a CAM's (or ops') partners about to expire unanswered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from api.web.items import TodayContext, TodayItem, provider
from journeys.leads.domain import OfferState
from journeys.leads.models import Lead, LeadOffer
from store.models import Partner

SOON = timedelta(hours=24)  # real hours: an offer expiring within them is listed


@provider("leads")
async def lead_items(ctx: TodayContext) -> list[TodayItem]:
    stmt = ctx.responsible(
        select(LeadOffer, Lead, Partner)
        .join(Lead, Lead.id == LeadOffer.lead_id)
        .join(Partner, Partner.id == LeadOffer.partner_id)
        .where(LeadOffer.state == OfferState.live.value, LeadOffer.expires_at <= ctx.now + SOON)
    )
    items = []
    for offer, lead, partner in (await ctx.session.execute(stmt.order_by(LeadOffer.expires_at))).all():
        items.append(
            TodayItem(
                kind="leads",
                label="Lead offer expiring",
                partner_id=partner.id,
                partner_name=partner.name,
                title=f"{lead.company} — {lead.product_category}, {lead.country}",
                detail=f"offer {offer.offer_no}, unanswered since {offer.offered_at:%Y-%m-%d %H:%M} UTC",
                deadline=offer.expires_at,
                deadline_label="offer expires",
                entity_id=str(lead.id),
            )
        )
    return items
