"""Today's deal items: registrations waiting for this user's decision (deadline: the approval
SLA) and extension requests waiting for the CAM."""

from __future__ import annotations

from sqlalchemy import String, case, cast, func, or_, select

from api.web.items import TodayContext, TodayItem, column, provider
from domain import actors
from domain.enums import Role
from domain.journeys import workflow_id
from journeys.deal.domain import AWAITING_DECISION, JOURNEY, OPEN_STATES, DealState
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
