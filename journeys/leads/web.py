"""Today's lead items: offers to a CAM's (or ops') partners about to expire unanswered, and leads
nobody took (`unplaced`) with their whole routing path: on ops' list every one (routing is ops'
job), on a CAM's list those one of its partners was offered or scored for."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from api.web.items import TodayContext, TodayItem, provider
from domain.enums import Role
from journeys.leads.domain import LeadState, OfferState
from journeys.leads.models import Lead, LeadOffer
from store.models import Partner

SOON = timedelta(hours=24)  # real hours: an offer expiring within them is listed
UNPLACED_LISTED = 200  # the most recent unplaced leads a list looks at
PATH_SHOWN = 12  # steps of a routing path shown on the item (the latest; the lead's page has all)


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


@provider("leads_unplaced")
async def unplaced_items(ctx: TodayContext) -> list[TodayItem]:
    """Unplaced leads, the latest first. The item names the partner of this user's it concerns (the
    last offered, else the best scored); ops see leads about no one partner too (no partner named)."""
    leads = list(
        (
            await ctx.session.scalars(
                select(Lead)
                .where(Lead.state == LeadState.unplaced.value)
                .order_by(Lead.updated_at.desc(), Lead.id)
                .limit(UNPLACED_LISTED)
            )
        ).all()
    )
    if not leads:
        return []
    offers: dict[uuid.UUID, list[LeadOffer]] = {lead.id: [] for lead in leads}
    for offer in await ctx.session.scalars(
        select(LeadOffer).where(LeadOffer.lead_id.in_(list(offers))).order_by(LeadOffer.offer_no)
    ):
        offers[offer.lead_id].append(offer)
    concerned = {lead.id: _concerned(lead, offers[lead.id]) for lead in leads}
    of_them = Partner.id.in_({pid for pids in concerned.values() for pid in pids})
    names = dict((await ctx.session.execute(select(Partner.id, Partner.name).where(of_them))).all())
    mine = set((await ctx.session.scalars(ctx.responsible(select(Partner.id).where(of_them)))).all())
    everything = ctx.principal.role == Role.ops and ctx.scope is None
    items = []
    for lead in leads:
        partner = next((pid for pid in concerned[lead.id] if pid in mine), None)
        if partner is None and not everything:
            continue
        where = f"{lead.country}/{lead.region}" if lead.region else lead.country
        items.append(
            TodayItem(
                kind="leads_unplaced",
                label="Lead unplaced",
                partner_id=partner,
                partner_name=names[partner] if partner else "",
                title=f"{lead.company} — {lead.product_category}, {where}",
                detail=" → ".join(path(lead, offers[lead.id], names)[-PATH_SHOWN:]),
                deadline=None,
                deadline_label="waiting for ops",
                entity_id=str(lead.id),
            )
        )
    return items


def _concerned(lead: Lead, offers: list[LeadOffer]) -> list[uuid.UUID]:
    """The partners a lead concerns, the most relevant first: those offered it (the latest first),
    then those its picks scored."""
    out = [o.partner_id for o in reversed(offers)]
    for step in reversed(lead.routing):
        for scored in step.get("result", {}).get("pick", {}).get("candidates", []):
            out.append(uuid.UUID(scored["partner_id"]))
    return list(dict.fromkeys(out))


def path(lead: Lead, offers: list[LeadOffer], names: dict[uuid.UUID, str]) -> list[str]:
    """The lead's routing path in words: each routing step's reasons, each offer's outcome, then why
    it waits."""
    by_step: dict[str, list[LeadOffer]] = {}
    for offer in offers:
        by_step.setdefault(offer.step_key, []).append(offer)
    out: list[str] = []
    for step in lead.routing:
        out.extend(step.get("result", {}).get("pick", {}).get("reasons", []))
        for offer in by_step.get(step.get("key", ""), []):
            why = offer.reason_code or offer.reason or ""
            name = names.get(offer.partner_id, str(offer.partner_id))
            out.append(f"offer {offer.offer_no} to {name}: {offer.state}{f' ({why})' if why else ''}")
    if lead.state_reason and lead.state_reason not in out[-1:]:
        out.append(lead.state_reason)
    return out
