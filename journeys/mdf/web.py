"""Today's MDF items: requests and claims waiting for this user's decision (deadline: the
approval level's SLA from the current policy), the Portfolio's "MDF available" column (the
current period's fund, from the ledger) and the Partner page's MDF section (requests and funds)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select

from api.web.items import Section, TodayContext, TodayItem, column, provider, section
from domain.enums import Role
from domain.journeys import workflow_id
from journeys.mdf import ledger
from journeys.mdf.domain import APPROVER_GRANT, AWAITING_DECISION, JOURNEY, MdfState, balances, money, period_of
from journeys.mdf.models import MdfEntry, MdfFund, MdfRequest
from store.models import Partner

ACTIONS = {MdfState.pending_approval.value: "mdf_decision", MdfState.claim_review.value: "mdf_claim_decision"}


def _awaiting_me(ctx: TodayContext):
    """What `GET /mdf/requests?awaiting_me=true` lists for this user (journeys/mdf/service.py)."""
    if ctx.principal.role == Role.cam or ctx.scope is not None:
        return and_(MdfRequest.awaiting_level == 0, ctx.answers_for())
    # the further levels up to the user's approver level (none without one)
    further = and_(
        MdfRequest.awaiting_level >= 1, MdfRequest.awaiting_level < (ctx.principal.grant(APPROVER_GRANT) or 1)
    )
    return or_(and_(MdfRequest.awaiting_level == 0, Partner.cam_id.is_(None)), further)


def _since(req: MdfRequest) -> datetime:
    """When the request reached the level now deciding: created (the first level of a request),
    else its last change."""
    first = req.state == MdfState.pending_approval.value and req.awaiting_level == 0
    return req.created_at if first else req.updated_at


@provider("mdf")
async def mdf_items(ctx: TodayContext) -> list[TodayItem]:
    if ctx.principal.role == Role.partner:
        return []
    stmt = (
        select(MdfRequest, Partner)
        .join(Partner, Partner.id == MdfRequest.partner_id)
        .where(MdfRequest.state.in_([s.value for s in AWAITING_DECISION]), MdfRequest.awaiting_level.is_not(None))
        .where(_awaiting_me(ctx))
        .order_by(MdfRequest.created_at, MdfRequest.id)
    )
    levels = ctx.policy.mdf.approval_levels
    items = []
    for req, partner in (await ctx.session.execute(stmt)).all():
        level = levels[min(req.awaiting_level or 0, len(levels) - 1)]
        claim = req.state == MdfState.claim_review.value
        amount = money(req.claim_minor or 0, req.currency) if claim else money(req.amount_minor, req.currency)
        detail = (
            f"claim of {amount} against {money(req.approved_minor or 0, req.currency)} approved"
            if claim
            else f"{req.activity_type}, {req.planned_start:%Y-%m-%d} to {req.planned_end:%Y-%m-%d}; "
            f"asked {req.created_at:%Y-%m-%d}"
        )
        items.append(
            TodayItem(
                kind="mdf",
                label="MDF claim" if claim else "MDF request",
                partner_id=partner.id,
                partner_name=partner.name,
                title=f"{req.title} — {amount}",
                detail=f"{detail}; level {level.name}",
                deadline=_since(req) + ctx.days(level.sla_days),
                deadline_label="SLA ends",
                action=ACTIONS[req.state],
                entity_id=str(req.id),
                extra={"workflow_id": workflow_id(JOURNEY, req.id), "level": level.name},
            )
        )
    return items


def _current_period(ctx: TodayContext) -> str:
    rules = ctx.policy.mdf
    return period_of(ctx.now, rules.period, rules.time_zone).label


@column("mdf_available", "MDF available", 40)
async def mdf_available(session, partner_ids, ctx: TodayContext) -> dict:
    """The current period's fund: what can still be requested, in major units of the program
    currency (every fund's currency), so that the column sorts; absent fund: empty."""
    fund_rows = await session.execute(
        select(MdfFund.id, MdfFund.partner_id, MdfFund.currency).where(
            MdfFund.partner_id.in_(partner_ids), MdfFund.period == _current_period(ctx)
        )
    )
    funds = {fid: (pid, currency) for fid, pid, currency in fund_rows.all()}
    if not funds:
        return {}
    sums = await session.execute(
        select(MdfEntry.fund_id, MdfEntry.kind, func.sum(MdfEntry.amount_minor))
        .where(MdfEntry.fund_id.in_(list(funds)))
        .group_by(MdfEntry.fund_id, MdfEntry.kind)
    )
    entries: dict = {fid: [] for fid in funds}
    for fid, kind, total in sums.all():
        entries[fid].append((kind, int(total)))
    return {pid: round(balances(entries[fid]).available / 100, 2) for fid, (pid, _) in funds.items()}


@section("mdf")
async def mdf_section(session, partner: Partner, ctx: TodayContext) -> Section | None:
    funds = (
        await session.scalars(select(MdfFund).where(MdfFund.partner_id == partner.id).order_by(MdfFund.period.desc()))
    ).all()
    requests = (
        await session.scalars(
            select(MdfRequest).where(MdfRequest.partner_id == partner.id).order_by(MdfRequest.created_at.desc())
        )
    ).all()
    if not funds and not requests:
        return None
    fund_rows = []
    for fund in funds:
        b = await ledger.fund_balances(session, fund.id)
        fund_rows.append(
            {
                "period": fund.period,
                "expires_at": fund.expires_at,
                **{
                    k: money(v, fund.currency)
                    for k, v in (
                        ("funded", b.funded),
                        ("reserved", b.reserved),
                        ("paid", b.paid),
                        ("expired", b.expired),
                        ("available", b.available),
                    )
                },
            }
        )
    request_rows = [
        {
            "id": str(r.id),
            "title": r.title,
            "activity_type": r.activity_type,
            "period": r.period,
            "state": r.state,
            "amount": money(r.amount_minor, r.currency),
            "approved": money(r.approved_minor, r.currency) if r.approved_minor is not None else "",
            "paid": money(r.paid_minor, r.currency) if r.paid_minor else "",
            "workflow_id": workflow_id(JOURNEY, r.id),
            "action": ACTIONS.get(r.state) if r.awaiting_level is not None else None,
        }
        for r in requests
    ]
    return Section(
        title="Market development funds",
        template="sections/mdf.html.j2",
        context={"funds": fund_rows, "requests": request_rows},
        order=40,
    )
