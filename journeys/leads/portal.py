"""The lead distribution journey in the partner portal: on the home page, the offers waiting for the
partner with their acceptance deadline (accepted or declined inline, a decline with one of the
policy's reasons and a few words) and the leads it accepted with their conversion deadline; a
lead's page with the deal registration prefilled from the lead, which registers the deal (the deal
journey's service, through its contract) and names it for the lead (converted). Every answer goes
through the same service and workflow update as the API (and the one-click links of the emails)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.portal.i18n import N_, Translator
from api.portal.items import PortalActionDep, PortalContext, PortalItem, portal_action, portal_item, portal_view
from api.portal.pages import render, translator
from api.portal.security import PREFIX, PortalUser, signed_in
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from domain.policy import ProgramPolicy
from journeys.deal import contract as deals
from journeys.leads import service
from journeys.leads.domain import JOURNEY, LeadState, OfferState, Response
from journeys.leads.models import Lead, LeadOffer
from journeys.leads.policy import LeadsPolicy
from store import repo

Line = Annotated[str, Form(max_length=260), SCREEN_LINE]
Text = Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)]


# The default policy's decline reasons, in the catalogs (a reason ops add is shown as written).
REASONS = {
    "no_capacity": N_("no capacity"),
    "not_our_territory": N_("not our territory"),
    "not_our_product": N_("not our product"),
    "bad_lead": N_("bad lead"),
    "other": N_("other"),
}
STATES = {
    "offered": N_("offered"),
    "accepted": N_("accepted"),
    "converted": N_("converted: a deal is registered"),
    "lapsed": N_("lapsed: no deal within the conversion window"),
}


def _reasons(policy: ProgramPolicy, t: Translator) -> dict[str, str]:
    """The policy's decline reasons, each with its words (the form's choices)."""
    return {code: t.gettext(REASONS.get(code, code)) for code in policy.section(LeadsPolicy).decline_reasons}


def _about(lead: Lead, t: Translator) -> str:
    where = f"{lead.country}/{lead.region}" if lead.region else lead.country
    value = f", {t.money(lead.value_minor, lead.currency)}" if lead.value_minor and lead.currency else ""
    return f"{lead.product_category}, {where}{value}"


@portal_item(f"{JOURNEY}.offer")
async def offers_waiting(ctx: PortalContext) -> list[PortalItem]:
    """The partner's live offers: accept or decline inline before the acceptance deadline."""
    stmt = (
        select(LeadOffer, Lead)
        .join(Lead, Lead.id == LeadOffer.lead_id)
        .where(LeadOffer.partner_id == ctx.partner_id, LeadOffer.state == OfferState.live.value)
        .order_by(LeadOffer.expires_at)
        .limit(100)
    )
    t = ctx.t
    reasons = _reasons(ctx.policy, t)
    return [
        PortalItem(
            kind=JOURNEY,
            label=t.gettext("Lead offer"),
            title=lead.company,
            detail=_about(lead, t),
            deadline=offer.expires_at,
            deadline_label=t.gettext("accept by"),
            link=f"{PREFIX}/leads/{lead.id}",
            action="leads/offer.html.j2",
            entity_id=str(lead.id),
            extra=reasons,
        )
        for offer, lead in (await ctx.session.execute(stmt)).all()
    ]


async def conversion_deadline(session: AsyncSession, lead: Lead, partner_id: uuid.UUID) -> datetime | None:
    """When the accepted lead lapses without a deal: its acceptance plus the conversion window of
    the policy version the lead was routed by (as its journey counts it)."""
    accepted_at = await session.scalar(
        select(LeadOffer.answered_at).where(
            LeadOffer.lead_id == lead.id,
            LeadOffer.partner_id == partner_id,
            LeadOffer.state == OfferState.accepted.value,
        )
    )
    pinned = await repo.policy_version(session, lead.policy_version) or await repo.current_policy(session)
    if accepted_at is None:
        return None
    return accepted_at + pinned.policy.days(pinned.policy.section(LeadsPolicy).conversion_days)


@portal_item(f"{JOURNEY}.accepted")
async def accepted_leads(ctx: PortalContext) -> list[PortalItem]:
    """Leads the partner accepted and has not registered a deal for: register it before the deadline."""
    stmt = (
        select(Lead)
        .where(Lead.partner_id == ctx.partner_id, Lead.state == LeadState.accepted.value)
        .order_by(Lead.updated_at)
        .limit(100)
    )
    t = ctx.t
    return [
        PortalItem(
            kind=JOURNEY,
            label=t.gettext("Accepted lead: register the deal"),
            title=lead.company,
            detail=_about(lead, t),
            deadline=await conversion_deadline(ctx.session, lead, ctx.partner_id),
            deadline_label=t.gettext("register the deal by"),
            link=f"{PREFIX}/leads/{lead.id}",
            entity_id=str(lead.id),
        )
        for lead in (await ctx.session.scalars(stmt)).all()
    ]


async def _lead(session: AsyncSession, user: PortalUser, lead_id: uuid.UUID) -> Lead:
    """A lead offered to the user's partner; another's answers 404 (the API's scope)."""
    return await service.lead_for(session, lead_id, user.principal)


@portal_view(JOURNEY, "/leads/{lead_id}")
async def lead_page(lead_id: uuid.UUID, request: Request, session: SessionDep):
    user = await signed_in(request, session)
    lead = await _lead(session, user, lead_id)
    policy = (await repo.current_policy(session)).policy
    offer = await session.scalar(
        select(LeadOffer)
        .where(LeadOffer.lead_id == lead.id, LeadOffer.partner_id == user.partner_id)
        .order_by(LeadOffer.offer_no.desc())
        .limit(1)
    )
    mine = lead.state == LeadState.accepted.value and lead.partner_id == user.partner_id
    t = translator(user)
    value = f"{lead.value_minor / 100:.2f}" if lead.value_minor else ""
    return render(
        request,
        "leads/lead",
        user,
        lead=lead,
        about=_about(lead, t),
        state=t.gettext(STATES.get(lead.state, lead.state)) if lead.partner_id == user.partner_id else "",
        offer=offer if offer is not None and offer.state == OfferState.live.value else None,
        item={"entity_id": str(lead.id), "title": lead.company, "extra": _reasons(policy, t)},
        accepted=mine,
        deadline=await conversion_deadline(session, lead, user.partner_id) if mine else None,
        prefill={
            "customer_name": lead.company,
            "customer_domain": lead.domain,
            "product_category": lead.product_category,
            "amount": value,
            "currency": lead.currency or "",
        },
        stages={s.value: s.value for s in deals.DealStage if not s.value.startswith("closed")},
    )


@portal_action(JOURNEY, "accept", "/leads/{lead_id}/accept")
async def accept(lead_id: uuid.UUID, ctx: PortalActionDep) -> str | tuple[str, str]:
    """Accept the offer (POST /leads/{id}/accept); then the lead's page, its deal to register."""
    await _lead(ctx.session, ctx.user, lead_id)
    await service.respond(
        ctx.session, ctx.temporal, ctx.principal, lead_id, deadline=ctx.deadline, response=Response.accept
    )
    ctx.back = f"{PREFIX}/leads/{lead_id}"
    return ctx.t.gettext("Lead accepted: register the deal for it.")


@portal_action(JOURNEY, "decline", "/leads/{lead_id}/decline")
async def decline(
    lead_id: uuid.UUID, ctx: PortalActionDep, reason_code: Line = "", reason: Text = ""
) -> str | tuple[str, str]:
    """Decline the offer with one of the policy's reasons and a few words (POST /leads/{id}/decline)."""
    t = ctx.t
    await _lead(ctx.session, ctx.user, lead_id)
    reasons = (await repo.current_policy(ctx.session)).policy.section(LeadsPolicy).decline_reasons
    if reason_code not in reasons:
        return t.gettext("Choose a reason for declining."), "error"
    if not reason.strip():
        return t.gettext("Say in a few words why you decline."), "error"
    await service.respond(
        ctx.session,
        ctx.temporal,
        ctx.principal,
        lead_id,
        deadline=ctx.deadline,
        response=Response.decline,
        reason_code=reason_code,
        reason=reason.strip(),
    )
    return t.gettext("Lead declined.")


@portal_action(JOURNEY, "deal", "/leads/{lead_id}/deal")
async def register_deal(
    lead_id: uuid.UUID,
    ctx: PortalActionDep,
    form: deals.DealForm,
) -> str | tuple[str, str]:
    """Register the deal for an accepted lead (POST /deals) and name it for the lead (POST
    /leads/{id}/deal): the lead is converted."""
    t = ctx.t
    lead = await _lead(ctx.session, ctx.user, lead_id)
    ctx.back = f"{PREFIX}/leads/{lead_id}"
    if lead.state != LeadState.accepted.value or lead.partner_id != ctx.user.partner_id:
        return t.gettext("This lead is not accepted by you: no deal is registered for it."), "error"
    deal = await deals.register_from_portal(ctx, form)
    if isinstance(deal, str):
        return deal, "error"
    lead = await _lead(ctx.session, ctx.user, lead_id)
    await service.link_deal(ctx.session, ctx.temporal, ctx.principal, lead, deal.id)
    ctx.back = f"{PREFIX}/deals/{deal.id}"
    if deal.state == deals.DealState.conflict_review.value:
        return t.gettext("Deal registered for the lead; another partner registered it too: under review."), "info"
    return t.gettext("Deal registered for the lead.")
