"""The deal journey in the workspace: Today's items (registrations waiting for this user's
decision, deadline: the approval SLA; extension requests waiting for the CAM), the Portfolio's
open deals column, the Partner page's deals section, the deal's own page (live from its journey)
and the inline actions: decide a deal, grant or refuse an extension."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC
from typing import Annotated

from fastapi import Form, HTTPException, Request
from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api import journeys
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.web.actions import ActionDep, Notice, Reason, Refusal, action, detail_of, status_of, view
from api.web.actors import actor_names
from api.web.items import Section, TodayContext, TodayItem, column, provider, rows_of, section
from api.web.pages import render, temporal_ui
from api.web.security import signed_in
from domain import actors
from domain.enums import Role
from domain.journeys import PROGRESS, workflow_id
from domain.types import clean_text
from journeys.deal import service
from journeys.deal.domain import (
    AWAITING_DECISION,
    DECIDE,
    DECIDE_EXTENSION,
    JOURNEY,
    OPEN_STATES,
    DealDecision,
    DealProgress,
    DealState,
    Decision,
    DecisionResult,
    ExtensionDecision,
    ExtensionResult,
)
from journeys.deal.models import Deal
from store.models import AuditEvent, Partner


def money(minor: int, currency: str) -> str:
    return f"{currency} {minor / 100:,.2f}"


def describe(deal: Deal) -> str:
    return f"{deal.customer_name} — {deal.product_category}, {money(deal.amount_minor, deal.currency)}"


def _who(actor: str) -> str:
    kind = actors.kind_of(actor)
    return {"partner": "the partner", "cam": "the CAM", "ops": "ops"}.get(kind.value if kind else "", actor)


@provider("deal")
async def deal_items(ctx: TodayContext) -> list[TodayItem]:
    rules = ctx.policy.deal
    stmt = select(Deal, Partner).join(Partner, Partner.id == Deal.partner_id)
    stmt = stmt.where(Deal.state.in_([s.value for s in AWAITING_DECISION]))
    if ctx.principal.role == Role.ops:  # ops also decide what was escalated to them
        escalated = Deal.created_at < ctx.now - ctx.days(rules.escalation_days)
        stmt = stmt.where(or_(ctx.answers_for(), escalated))
    else:
        stmt = ctx.responsible(stmt)
    items = []
    for deal, partner in (await ctx.session.execute(stmt.order_by(Deal.created_at))).all():
        conflict = deal.state == DealState.conflict_review.value
        detail = f"registered {deal.created_at:%Y-%m-%d} by {_who(deal.created_by)}" + (
            f"; conflicts with deal {deal.conflict_with}" if conflict else ""
        )
        items.append(
            TodayItem(
                kind="deal",
                label="Conflict review" if conflict else "Deal decision",
                partner_id=partner.id,
                partner_name=partner.name,
                title=describe(deal),
                detail=detail,
                deadline=deal.created_at + ctx.days(rules.approval_sla_days),
                deadline_label="SLA ends",
                action="deal_decision",
                entity_id=str(deal.id),
            )
        )
    return items + await _extension_requests(ctx)


async def _extension_requests(ctx: TodayContext) -> list[TodayItem]:
    """Approved deals whose journey asked the CAM about more requests than it has answered
    (the `extension_request` / `extension_granted` / `extension_rejected` notifications)."""
    if ctx.principal.role != Role.cam:
        return []
    wid = func.split_part(AuditEvent.idempotency_key, ":", 1)
    asked = func.count().filter(AuditEvent.action == f"{JOURNEY}.extension_request_sent")
    answered = func.count().filter(
        AuditEvent.action.in_([f"{JOURNEY}.extension_granted_sent", f"{JOURNEY}.extension_rejected_sent"])
    )
    last_asked = func.max(case((AuditEvent.action == f"{JOURNEY}.extension_request_sent", AuditEvent.at)))
    counts = (
        select(wid.label("wid"), last_asked.label("asked_at"))
        .where(AuditEvent.journey == JOURNEY, AuditEvent.action.like(f"{JOURNEY}.extension_%_sent"))
        .group_by(wid)
        .having(asked > answered)
        .subquery()
    )
    stmt = ctx.responsible(
        select(Deal, Partner, counts.c.asked_at)
        .join(Partner, Partner.id == Deal.partner_id)
        .join(counts, counts.c.wid == func.concat(f"{JOURNEY}-", cast(Deal.id, String)))
        .where(Deal.state == DealState.approved.value)
    )
    items = []
    for deal, partner, asked_at in (await ctx.session.execute(stmt)).all():
        items.append(
            TodayItem(
                kind="deal",
                label="Extension request",
                partner_id=partner.id,
                partner_name=partner.name,
                title=describe(deal),
                detail=f"protected until {deal.protected_until:%Y-%m-%d}; asked {asked_at:%Y-%m-%d}",
                deadline=deal.protected_until,
                deadline_label="protection ends",
                action="extension_decision",
                entity_id=str(deal.id),
                extra={"workflow_id": workflow_id(JOURNEY, deal.id)},
            )
        )
    return items


@column("open_deals", "Open deals", 20)
async def open_deals(session, partner_ids, ctx: TodayContext) -> dict:
    rows = await session.execute(
        select(Deal.partner_id, func.count())
        .where(Deal.partner_id.in_(partner_ids), Deal.state.in_([s.value for s in OPEN_STATES]))
        .group_by(Deal.partner_id)
    )
    counts = dict(rows.all())
    return {pid: counts.get(pid, 0) for pid in partner_ids}


# ------------------------------------------------------------------ partner page


@section("deal")
async def deals_section(session, partner: Partner, ctx: TodayContext) -> Section:
    deals = await rows_of(session, Deal, partner, Deal.created_at.desc())
    names = await actor_names(session, [d.decided_by for d in deals if d.decided_by])
    awaiting = [s.value for s in AWAITING_DECISION]
    return Section(
        title="Deals",
        template="deal/deals.html.j2",
        context={"deals": deals, "names": names, "awaiting": awaiting},
        order=20,
    )


@view(JOURNEY, "/deals/{deal_id}")
async def deal_page(
    deal_id: uuid.UUID, request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    """The deal, with its state live from its journey (`progress` query) and its decision inline."""
    user = await signed_in(request, session)
    deal, partner = await service.deal_for(session, deal_id, user.principal)
    await session.close()
    try:
        progress = await journeys.query(temporal, JOURNEY, deal_id, PROGRESS, DealProgress)
    except HTTPException:
        progress = None
    ui = temporal_ui(settings, workflow_id(JOURNEY, deal_id))
    return render(request, "deal/deal", user, deal=deal, partner=partner, progress=progress, ui=ui)


# ------------------------------------------------------------------ inline actions


async def _already_decided(session: AsyncSession, deal_id: uuid.UUID, message: str) -> str:
    """Who decided a deal that another decision beat, and when (once the journey recorded it)."""
    deal = None
    for _ in range(30):  # the winner's decision is being recorded: up to ~3 s
        session.expire_all()
        deal = await session.get(Deal, deal_id)
        if deal is not None and deal.decided_by and deal.decided_at:
            break
        await asyncio.sleep(0.1)
    if deal is None or not deal.decided_by:
        return f"This deal was already decided ({message})."
    who = (await actor_names(session, [deal.decided_by]))[deal.decided_by]
    at = deal.decided_at.astimezone(UTC) if deal.decided_at else None
    return f"Already decided by {who} at {at:%Y-%m-%d %H:%M:%S} UTC: the deal is {deal.state}."


@action(JOURNEY, "deal_decision", "/deals/{deal_id}/decision")
async def decide_deal(
    deal_id: uuid.UUID, ctx: ActionDep, decision: Annotated[Decision, Form()], reason: Reason = ""
) -> str | Notice:
    """Approve or reject through the journey's `decide` update; a decision that lost the race
    says who decided first and when."""
    try:
        reason = clean_text(reason, multiline=True)
    except ValueError as err:
        return Notice(f"reason: {err}", "error")
    if decision == Decision.reject and not reason:
        return Notice("reason: say why the deal is rejected (the partner reads it)", "error")
    deal, _ = await service.deal_for(ctx.session, deal_id, ctx.principal)
    ctx.about = deal.customer_name
    arg = DealDecision(decision=decision, reason=reason or "approved in the CAM workspace", by=ctx.principal.actor)
    try:
        result = await service.update(
            ctx.session,
            ctx.temporal,
            ctx.principal,
            deal_id,
            DECIDE,
            arg,
            DecisionResult,
            deadline=ctx.deadline,
            decision_on="deal",
        )
    except Refusal as err:
        if status_of(err) != 409:
            raise
        return Notice(await _already_decided(ctx.session, deal_id, detail_of(err)), "info")
    return f"{ctx.about}: {result.state.value}."


@action(JOURNEY, "extension_decision", "/deals/{deal_id}/extension")
async def decide_extension(
    deal_id: uuid.UUID, ctx: ActionDep, decision: Annotated[Decision, Form()], reason: Reason = ""
) -> str | Notice:
    """Grant or refuse a pending extension request through the journey's `decide_extension` update."""
    try:
        arg = ExtensionDecision(decision=decision, reason=clean_text(reason, multiline=True), by=ctx.principal.actor)
    except ValueError as err:
        return Notice(f"reason: {err}", "error")
    ctx.about = "extension"
    try:
        result = await service.update(
            ctx.session,
            ctx.temporal,
            ctx.principal,
            deal_id,
            DECIDE_EXTENSION,
            arg,
            ExtensionResult,
            deadline=ctx.deadline,
            decision_on="extension",
        )
    except Refusal as err:
        if status_of(err) != 409:
            raise
        return Notice(f"extension: {detail_of(err)}", "info")
    return f"Extension {result.status}."
