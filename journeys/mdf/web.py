"""Today's MDF items: requests and claims waiting for this user's decision (deadline: the
approval level's SLA from the current policy), the Portfolio's "MDF available" column (the
current period's fund, from the ledger), the Partner page's MDF section (requests and funds) and
the inline decisions on a request or a claim (approve, approve for less, reject), through the
same service and workflow updates as the JSON API; a decision that lost a race says who decided."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep
from api.schemas import SCREEN_LINE
from api.web.actions import ActionContext, ActionDep, Notice, Reason, Refusal, action, detail_of, status_of, view
from api.web.actors import actor_names
from api.web.items import Section, TodayContext, TodayItem, column, provider, section
from api.web.pages import temporal_ui
from api.web.security import signed_in
from domain.enums import Role
from domain.journeys import workflow_id
from domain.types import clean_text
from journeys.mdf import ledger, service
from journeys.mdf.domain import (
    APPROVER_GRANT,
    AWAITING_DECISION,
    DECIDE,
    DECIDE_CLAIM,
    JOURNEY,
    Decision,
    MdfAnswer,
    MdfState,
    balances,
    money,
    period_of,
)
from journeys.mdf.models import MdfEntry, MdfFund, MdfRequest
from journeys.mdf.schemas import MAX_MINOR
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
        template="mdf/mdf.html.j2",
        context={"funds": fund_rows, "requests": request_rows},
        order=40,
    )


# ------------------------------------------------------------------ inline decisions

Amount = Annotated[str, Form(max_length=20), SCREEN_LINE]


def minor_units(amount: str) -> int | None:
    """'1,234.50' -> 123450; empty -> None; ValueError when it is not a positive amount."""
    text = amount.strip().replace(",", "").replace(" ", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("write the amount like 400.00") from None
    # bounded before any arithmetic: quantizing 1e30 raised InvalidOperation (a 500)
    if not value.is_finite() or value <= 0 or value > Decimal(MAX_MINOR) / 100:
        raise ValueError(f"a positive amount of at most {MAX_MINOR // 100:,}.00")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("a positive amount with at most two decimals")
    return int(value * 100)


async def _already_decided(session: AsyncSession, request_id: uuid.UUID, message: str) -> str:
    """Who decided a request (or claim) that another decision beat, once the journey recorded it."""
    req = None
    for _ in range(30):  # the winner's decision is being recorded: up to ~3 s
        session.expire_all()
        req = await session.get(MdfRequest, request_id)
        if req is not None and req.decided_by and req.state not in (MdfState.pending_approval, MdfState.claim_review):
            break
        await asyncio.sleep(0.1)
    if req is None or not req.decided_by or req.state in (MdfState.pending_approval, MdfState.claim_review):
        return f"This MDF request was not decided here: {message}"
    who = (await actor_names(session, [req.decided_by]))[req.decided_by]
    return f"Already decided by {who} at {req.updated_at:%Y-%m-%d %H:%M:%S} UTC: the request is {req.state}."


async def _decide(
    request_id: uuid.UUID, ctx: ActionContext, *, update: str, decision: Decision, reason: str, amount: str
) -> str | Notice:
    what = "claim" if update == DECIDE_CLAIM else "request"
    try:
        reason = clean_text(reason, multiline=True)
        amount_minor = minor_units(amount) if decision == Decision.approve_lower else None
    except ValueError as err:
        return Notice(f"{'reason' if 'amount' not in str(err) else 'amount'}: {err}", "error")
    if decision == Decision.reject and not reason:
        return Notice(
            f"reason: say why the {what} is {'denied' if update == DECIDE_CLAIM else 'rejected'} "
            "(the partner reads it)",
            "error",
        )
    if decision == Decision.approve_lower and amount_minor is None:
        return Notice("amount: the lower amount to approve", "error")
    req, _ = await service.request_for(ctx.session, request_id, ctx.principal)
    ctx.about = req.title
    arg = service.decision_of(ctx.principal, decision, amount_minor, reason or "approved in the CAM workspace")
    try:
        answer = await service.update(
            ctx.session,
            ctx.temporal,
            ctx.principal,
            request_id,
            update,
            arg,
            MdfAnswer,
            deadline=ctx.deadline,
            decision=True,
        )
    except Refusal as err:
        if status_of(err) != 409:
            raise
        return Notice(await _already_decided(ctx.session, request_id, detail_of(err)), "info")
    waiting = f", waiting for {answer.level}" if answer.level else ""
    return f"{ctx.about}: {answer.state.value}{waiting}."


def _decision(name: str, path: str, update: str, doc: str) -> None:
    async def decide(
        request_id: uuid.UUID,
        ctx: ActionDep,
        decision: Annotated[Decision, Form()],
        reason: Reason = "",
        amount: Amount = "",
    ) -> str | Notice:
        return await _decide(request_id, ctx, update=update, decision=decision, reason=reason, amount=amount)

    decide.__name__, decide.__qualname__, decide.__doc__ = name, name, doc
    action(JOURNEY, name, path)(decide)


_decision(
    "mdf_decision",
    "/mdf/requests/{request_id}/decision",
    DECIDE,
    "Approve, approve for less or reject a request at the level now deciding (the `decide` update).",
)
_decision(
    "mdf_claim_decision",
    "/mdf/requests/{request_id}/claim-decision",
    DECIDE_CLAIM,
    "Approve, approve in part or deny a claim (the `decide_claim` update).",
)


@view(JOURNEY, "/mdf/requests/{request_id}/journey")
async def request_journey(request_id: uuid.UUID, request: Request, session: SessionDep, settings: SettingsDep):
    """The request's journey in the Temporal Web UI (for a user who may see the request)."""
    user = await signed_in(request, session)
    await service.request_for(session, request_id, user.principal)
    return RedirectResponse(temporal_ui(settings, workflow_id(JOURNEY, request_id)), status_code=303)
