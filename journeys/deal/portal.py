"""The deal journey in the partner portal: deals whose protection ends soon on the home page; the
partner's deals, registering one (another partner's registration of the same customer is shown
plainly: under review), following one, asking for more protection time, moving its stage and
closing it (won or lost). Every task goes through the same service and workflow update as the API."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Form, Request
from pydantic import ValidationError
from sqlalchemy import select

from api import journeys
from api.deps import Creation, SessionDep
from api.portal.i18n import N_, Translator
from api.portal.items import (
    PortalActionContext,
    PortalActionDep,
    PortalContext,
    PortalItem,
    own,
    portal_action,
    portal_item,
    portal_view,
)
from api.portal.pages import error_text, render, translator
from api.portal.security import PREFIX, signed_in
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from journeys.deal import service
from journeys.deal.contract import DealForm
from journeys.deal.domain import (
    JOURNEY,
    REQUEST_EXTENSION,
    DealStage,
    DealState,
    ExtensionRequest,
    ExtensionResult,
    StageChange,
)
from journeys.deal.models import Deal
from journeys.deal.schemas import DealCreate
from store import repo

Line = Annotated[str, Form(max_length=260), SCREEN_LINE]


STATES = {
    "pending_approval": N_("waiting for approval"),
    "conflict_review": N_("under review: registered by another partner too"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "won": N_("won"),
    "lost": N_("lost"),
    "expired": N_("expired"),
}
STAGES = {
    "qualification": N_("qualification"),
    "discovery": N_("discovery"),
    "proposal": N_("proposal"),
    "negotiation": N_("negotiation"),
}
CLOSED = {"closed_won": N_("closed: won"), "closed_lost": N_("closed: lost")}


@portal_item(JOURNEY)
async def protection_ending(ctx: PortalContext) -> list[PortalItem]:
    """Approved deals whose protection ends within the policy's first expiry reminder."""
    window = ctx.now + ctx.policy.days(max(ctx.policy.deal.expiry_reminder_days, default=14))
    stmt = (
        select(Deal)
        .where(
            Deal.partner_id == ctx.partner_id,
            Deal.state == DealState.approved.value,
            Deal.protected_until.is_not(None),
            Deal.protected_until <= window,
        )
        .order_by(Deal.protected_until)
    )
    t = ctx.t
    return [
        PortalItem(
            kind=JOURNEY,
            label=t.gettext("Deal protection"),
            title=deal.customer_name,
            detail=f"{deal.product_category}, {t.money(deal.amount_minor, deal.currency)}",
            deadline=deal.protected_until,
            deadline_label=t.gettext("protection ends"),
            link=f"{PREFIX}/deals/{deal.id}",
            entity_id=str(deal.id),
        )
        for deal in (await ctx.session.scalars(stmt)).all()
    ]


@portal_view(JOURNEY, "/deals")
async def deals_page(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    stmt = select(Deal).where(Deal.partner_id == user.partner_id).order_by(Deal.created_at.desc()).limit(200)
    deals = (await session.scalars(stmt)).all()
    return render(request, "deal/deals", user, deals=deals, stages=STAGES, states=STATES, prefill={})


@portal_view(JOURNEY, "/deals/{deal_id}")
async def deal_page(deal_id: uuid.UUID, request: Request, session: SessionDep):
    user = await signed_in(request, session)
    deal = own(await session.get(Deal, deal_id), user, "deal")
    policy = (await repo.current_policy(session)).policy
    t = translator(user)
    return render(
        request,
        "deal/deal",
        user,
        deal=deal,
        state=t.gettext(STATES.get(deal.state, deal.state)),
        stage=t.gettext({**STAGES, **CLOSED}.get(deal.stage, deal.stage)),
        stages=STAGES,
        max_extension_days=policy.deal.max_extension_days,
    )


@dataclass(frozen=True)
class Registered:
    """A deal registered from a portal form: its id and state (`conflict_review`: another partner's)."""

    id: uuid.UUID
    state: str


async def register_form(ctx: PortalActionContext, form: dict[str, str]) -> Registered | str:
    """Register a deal from a portal form's fields as the signed-in partner (POST /deals: the same
    service); the form's refusal in words otherwise."""
    try:
        body = DealCreate.model_validate(
            {
                **form,
                "amount": Decimal(form.get("amount", "").strip() or "0"),
                "currency": form.get("currency", "").strip().upper(),
            }
        )
    except (ValidationError, InvalidOperation) as err:
        return error_text(err) if isinstance(err, ValidationError) else ctx.t.gettext("amount: not a number")
    partner = await ctx.partner()
    creation = Creation(ctx.principal, ctx.session, ctx.temporal, ctx.settings, None, "/deals")
    answer = await journeys.created(
        creation, body, JOURNEY, lambda idem: service.register(creation, body, partner.id, idem)
    )
    out = json.loads(bytes(answer.body))
    return Registered(uuid.UUID(out["id"]), out["state"])


def registered_notice(t: Translator, deal: Registered) -> str | tuple[str, str]:
    if deal.state == DealState.conflict_review.value:
        return t.gettext("Already registered by another partner: your registration is under review."), "info"
    return t.gettext("Deal registered.")


@portal_action(JOURNEY, "register", "/deals")
async def register(ctx: PortalActionDep, form: DealForm) -> str | tuple[str, str]:
    """Register a deal as the partner (POST /deals)."""
    deal = await register_form(ctx, form)
    if isinstance(deal, str):
        return deal, "error"
    ctx.back = f"{PREFIX}/deals/{deal.id}"
    return registered_notice(ctx.t, deal)


@portal_action(JOURNEY, "extension", "/deals/{deal_id}/extensions")
async def request_extension(
    deal_id: uuid.UUID,
    ctx: PortalActionDep,
    days: Line = "",
    reason: Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)] = "",
) -> str | tuple[str, str]:
    """Ask for more protection time (POST /deals/{id}/extensions): bounded count and length."""
    t = ctx.t
    own(await ctx.session.get(Deal, deal_id), ctx.user, "deal")
    ctx.back = f"{PREFIX}/deals/{deal_id}"
    try:
        wanted = float(days)
    except ValueError:
        return t.gettext("days: a number of days"), "error"
    if not 0 < wanted <= 3650:
        return t.gettext("days: a number of days"), "error"
    result = await service.update(
        ctx.session,
        ctx.temporal,
        ctx.principal,
        deal_id,
        REQUEST_EXTENSION,
        ExtensionRequest(days=wanted, reason=reason, by=ctx.principal.actor),
        ExtensionResult,
        deadline=ctx.deadline,
    )
    if result.status == "granted":
        return t.gettext("Extension granted: protected until %(until)s.", until=t.datetime(result.protected_until))
    if result.status == "awaiting_cam":
        return t.gettext("Extension requested: your CAM decides."), "info"
    return t.gettext("Extension refused."), "error"


@portal_action(JOURNEY, "stage", "/deals/{deal_id}/stage")
async def change_stage(deal_id: uuid.UUID, ctx: PortalActionDep, stage: Line = "") -> str | tuple[str, str]:
    """Move an approved deal to another stage, or close it won or lost (POST /deals/{id}/stage: the
    same service and signal); a refusal (not approved, stage changes used up) is said plainly."""
    t = ctx.t
    deal = own(await ctx.session.get(Deal, deal_id), ctx.user, "deal")
    ctx.back = f"{PREFIX}/deals/{deal_id}"
    try:
        to = DealStage(stage)
    except ValueError:
        return t.gettext("stage: one of %(stages)s", stages=", ".join(DealStage)), "error"
    await service.change_stage(ctx.temporal, deal, StageChange(stage=to, by=ctx.principal.actor))
    if to == DealStage.closed_won:
        return t.gettext("The deal is closed as won.")
    if to == DealStage.closed_lost:
        return t.gettext("The deal is closed as lost.")
    return t.gettext("The deal moves to the stage: %(stage)s.", stage=t.gettext(STAGES[to.value]))
