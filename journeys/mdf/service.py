"""The MDF journey's commands: funds (balances from the ledger, allocations and adjustments),
requests with their atomic reservation, decisions and other updates of a request, and clawbacks.
Proof files are in uploads.py, reports in reports.py, the one-click decision links in links.py;
the router only translates HTTP."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys
from api.auth import Principal, scope_to_principal
from api.deps import Creation, load_partner
from api.idempotency import Idempotency
from domain.enums import Role
from domain.errors import Conflict, DomainError, Invalid, NotFound, Refused
from domain.journeys import PROGRESS
from domain.policy import ProgramPolicy
from journeys.mdf import ledger
from journeys.mdf.domain import (
    APPROVER_GRANT,
    AWAITING_DECISION,
    JOURNEY,
    EntryKind,
    MdfDecision,
    MdfInput,
    MdfProgress,
    MdfState,
    convert,
    days_between,
    money,
)
from journeys.mdf.models import MdfEntry, MdfFund, MdfRequest
from journeys.mdf.schemas import BalancesOut, ClawbackOut, EntryOut, FundOut, FundsOut, MdfCreate, MdfDetailOut, MdfOut
from store import repo
from store.models import Partner

log = logging.getLogger(__name__)
R = TypeVar("R")


async def request_for(session: AsyncSession, request_id: uuid.UUID, principal: Principal) -> tuple[MdfRequest, Partner]:
    """The request (404) and its partner, if the caller may act on it (403)."""
    req = await session.get(MdfRequest, request_id)
    if req is None:
        raise NotFound(f"no MDF request with id {request_id}")
    return req, await load_partner(session, req.partner_id, principal)


async def start_fund_soon(session: AsyncSession, client: Client, fund: MdfFund) -> None:
    """Start the fund's journey now if it is not running; when Temporal does not answer, the
    reconciler starts it (its record is committed)."""
    try:
        await journeys.ensure_started(session, client, ledger.fund_workflow_id(fund.partner_id, fund.period))
    except DomainError as err:
        log.warning("the journey of fund %s will be started by the reconciler (%s)", fund.id, err.detail)


async def open_fund(
    session: AsyncSession, partner: Partner, period: str | None, task_queue: str
) -> tuple[MdfFund, ProgramPolicy]:
    current = await repo.current_policy(session)
    try:
        fund, _ = await ledger.ensure_fund(
            session, partner, current.policy, policy_version=current.version, task_queue=task_queue, period=period
        )
    except ValueError as err:
        raise Invalid(f"period: {err}") from err
    if datetime.now(UTC) >= fund.expires_at:
        raise Conflict(f"the {fund.period} fund expired on {fund.expires_at:%Y-%m-%d %H:%M} UTC")
    return fund, current.policy


# ------------------------------------------------------------------ funds


def balances_out(fund: MdfFund, b: ledger.Balances) -> BalancesOut:
    return BalancesOut(
        allocated_minor=b.allocated,
        accrued_minor=b.accrued,
        adjusted_minor=b.adjusted,
        funded_minor=b.funded,
        reserved_minor=b.reserved,
        claimed_minor=b.claimed,
        paid_minor=b.paid,
        expired_minor=b.expired,
        available_minor=b.available,
        expiring_minor=max(b.available, 0) if b.expired == 0 else 0,
    )


async def funds(session: AsyncSession, client: Client, partner: Partner, task_queue: str) -> FundsOut:
    """The partner's funds, newest first, each with its balances and the entries behind them. The
    current period's fund is opened on first sight (its allocation from the policy)."""
    current = await repo.current_policy(session)
    fund, _ = await ledger.ensure_fund(
        session, partner, current.policy, policy_version=current.version, task_queue=task_queue
    )
    await session.commit()
    await start_fund_soon(session, client, fund)
    rows = (
        await session.scalars(
            select(MdfFund).where(MdfFund.partner_id == partner.id).order_by(MdfFund.starts_at.desc())
        )
    ).all()
    out = []
    for f in rows:
        entries = (await session.scalars(select(MdfEntry).where(MdfEntry.fund_id == f.id).order_by(MdfEntry.id))).all()
        b = ledger.balances((e.kind, e.amount_minor) for e in entries)
        out.append(
            FundOut(
                id=f.id,
                period=f.period,
                currency=f.currency,
                starts_at=f.starts_at,
                ends_at=f.ends_at,
                expires_at=f.expires_at,
                balances=balances_out(f, b),
                entries=[EntryOut.model_validate(e) for e in entries],
            )
        )
    return FundsOut(partner_id=partner.id, currency=current.policy.mdf.currency, funds=out)


async def add_fund_entry(
    ctx: Creation, partner: Partner, kind: EntryKind, amount: int, reason: str, period: str | None, idem: Idempotency
) -> dict:
    """Ops allocate more or adjust a fund (with a reason). A negative adjustment cannot take more
    than is available."""
    session = ctx.session
    fund, _ = await open_fund(session, partner, period, ctx.settings.task_queue)
    await ledger.lock_fund(session, fund.id)
    if amount < 0:
        available = (await ledger.fund_balances(session, fund.id)).available
        if -amount > available:
            raise Conflict(
                f"the {fund.period} fund has {money(available, fund.currency)} available: "
                f"an adjustment of {money(amount, fund.currency)} would take it below zero",
            )
    await ledger.add_entry(session, fund, kind, amount, key=None, by=ctx.principal.actor, reason=reason)
    await repo.claim_step(
        session,
        key=None,
        actor=ctx.principal.actor,
        action=f"mdf.{kind.value}",
        partner_id=partner.id,
        journey=JOURNEY,
        detail={"fund_id": str(fund.id), "period": fund.period, "amount_minor": amount, "reason": reason},
    )
    b = await ledger.fund_balances(session, fund.id)
    out = {"fund_id": str(fund.id), "period": fund.period, **balances_out(fund, b).model_dump()}
    await idem.remember(201, out)
    await session.commit()
    await start_fund_soon(session, ctx.temporal, fund)
    return out


# ------------------------------------------------------------------ requests


def check_dates(body, policy: ProgramPolicy) -> None:
    if body.planned_end < body.planned_start:
        raise Invalid("planned_end: the activity cannot end before it starts")
    if days_between(body.planned_start, body.planned_end) > policy.mdf.max_activity_days:
        raise Invalid(f"planned_end: an activity lasts at most {policy.mdf.max_activity_days:g} days")


async def create_request(ctx: Creation, body: MdfCreate, partner: Partner, idem: Idempotency) -> dict:
    """Validate against the policy, reserve the amount in the fund (atomically: 409 naming what is
    available), write the request and its journey record, then start `mdf-{request_id}`."""
    session, principal = ctx.session, ctx.principal
    current = await repo.current_policy(session)
    rules = current.policy.mdf
    kind = rules.activity_type(body.activity_type)
    if kind is None:
        known = ", ".join(t.key for t in rules.activity_types)
        raise Invalid(f"activity_type: {body.activity_type!r} is not in the catalog ({known})")
    check_dates(body, current.policy)
    rate = None
    amount = body.amount_minor
    if body.currency != rules.currency:
        rate = rules.exchange_rates.get(body.currency)
        if rate is None:
            raise Invalid(
                f"currency: no exchange rate from {body.currency} to {rules.currency} in the policy "
                "(ops set mdf.exchange_rates)",
            )
        amount = convert(body.amount_minor, rate)
    fund, _ = await open_fund(session, partner, body.period, ctx.settings.task_queue)
    if await idem.stored() is not None:
        raise Conflict("a concurrent retry of this request was answered")
    req = MdfRequest(
        id=uuid.uuid4(),
        partner_id=partner.id,
        fund_id=fund.id,
        period=fund.period,
        activity_type=kind.key,
        title=body.title,
        planned_start=body.planned_start,
        planned_end=body.planned_end,
        amount_minor=amount,
        currency=rules.currency,
        requested_amount_minor=body.amount_minor,
        requested_currency=body.currency,
        exchange_rate=rate,
        partner_share_percent=kind.partner_share_percent,
        expected_outcomes=body.expected_outcomes,
        state=MdfState.pending_approval.value,
        awaiting_level=0,
        paid_minor=0,
        created_by=principal.actor,
    )
    session.add(req)
    await session.flush()
    ok, _, available = await ledger.reserve(
        session, fund, req.id, amount, key=f"{journeys.workflow_id(JOURNEY, req.id)}:reserved", by=principal.actor
    )
    if not ok:
        raise Conflict(
            f"the {fund.period} fund has {money(available, fund.currency)} available: "
            f"{money(amount, fund.currency)} cannot be reserved",
        )
    start = journeys.start_input(
        MdfInput, req, partner, request_id=str(req.id), fund_id=str(fund.id), policy_version=current.version
    )
    detail = {
        "request_id": str(req.id),
        "title": body.title,
        "amount_minor": amount,
        "period": fund.period,
        "exchange_rate": rate,
    }
    new = journeys.NewJourney(JOURNEY, req, partner.id, req.state, start, "mdf.requested", detail)
    out = await journeys.create_and_start(ctx, new, answer=MdfOut, idem=idem, what="requested")
    await start_fund_soon(session, ctx.temporal, fund)
    return out


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    *,
    partner_id: uuid.UUID | None,
    cam_id: uuid.UUID | None,
    state: MdfState | None,
    period: str | None,
    awaiting_me: bool,
    limit: int,
    offset: int,
) -> Sequence[MdfRequest]:
    stmt = select(MdfRequest).join(Partner, Partner.id == MdfRequest.partner_id)
    stmt = scope_to_principal(stmt, principal, MdfRequest.partner_id)
    if partner_id:
        stmt = stmt.where(MdfRequest.partner_id == partner_id)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if state:
        stmt = stmt.where(MdfRequest.state == state.value)
    if period:
        stmt = stmt.where(MdfRequest.period == period)
    if awaiting_me:
        awaiting = MdfRequest.state.in_([s.value for s in AWAITING_DECISION])
        if principal.role == Role.partner:
            return []
        if principal.role == Role.cam:
            stmt = stmt.where(awaiting, MdfRequest.awaiting_level == 0)
        else:  # ops: the first level of partners without a CAM, and the further levels the key may decide
            further = and_(
                MdfRequest.awaiting_level >= 1, MdfRequest.awaiting_level < (principal.grant(APPROVER_GRANT) or 1)
            )
            stmt = stmt.where(awaiting, or_(and_(MdfRequest.awaiting_level == 0, Partner.cam_id.is_(None)), further))
    stmt = stmt.order_by(MdfRequest.created_at, MdfRequest.id).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all()


async def detail(session: AsyncSession, client: Client, req: MdfRequest) -> MdfDetailOut:
    out = MdfDetailOut.model_validate(req)
    await session.close()  # hold no connection while the journey answers
    try:
        out.progress = await journeys.query(client, JOURNEY, req.id, PROGRESS, MdfProgress, deadline=5)
    except DomainError:
        out.progress = None
    return out


async def update(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    request_id: uuid.UUID,
    update_name: str,
    arg: BaseModel,
    result_type: type[R],
    *,
    deadline: float,
    decision: bool = False,
) -> R:
    """A workflow update on a request the caller may act on (a decision: never the partner's own)."""
    await request_for(session, request_id, principal)
    if decision and principal.role == Role.partner:
        raise Refused("a partner cannot decide on its own MDF request or claim")
    await session.close()
    return await journeys.run_update(
        client,
        JOURNEY,
        request_id,
        update_name,
        arg,
        result_type,
        deadline=deadline,
        progress=f"/mdf/requests/{request_id}",
    )


def decision_of(principal: Principal, decision, amount_minor, reason: str) -> MdfDecision:
    return MdfDecision(
        decision=decision,
        amount_minor=amount_minor,
        reason=reason,
        by=principal.actor,
        approver_level=principal.grant(APPROVER_GRANT) if principal.role == Role.ops else None,
    )


# ------------------------------------------------------------------ clawbacks


async def clawback(
    session: AsyncSession, principal: Principal, req: MdfRequest, amount: int, reason: str, policy: ProgramPolicy
) -> ClawbackOut:
    """Ops recover paid funds within the policy's audit period (an entry, with a reason)."""
    if req.state != MdfState.paid.value or req.paid_at is None:
        raise Conflict(f"MDF request is {req.state}: only a paid request can be clawed back")
    if datetime.now(UTC) > req.paid_at + policy.days(policy.mdf.audit_days):
        raise Conflict(f"the audit period ({policy.mdf.audit_days:g} days after payment) has ended")
    fund = await session.get(MdfFund, req.fund_id)
    assert fund is not None
    await ledger.lock_fund(session, fund.id)
    clawed = (
        await session.scalar(
            select(func.coalesce(func.sum(MdfEntry.amount_minor), 0)).where(
                MdfEntry.request_id == req.id, MdfEntry.kind == EntryKind.clawback.value
            )
        )
        or 0
    )
    if amount > req.paid_minor - clawed:
        raise Invalid(
            f"amount_minor: {money(req.paid_minor - clawed, req.currency)} of the payments remain to claw back",
        )
    await ledger.add_entry(
        session, fund, EntryKind.clawback, amount, key=None, by=principal.actor, request_id=req.id, reason=reason
    )
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="mdf.clawback",
        partner_id=req.partner_id,
        journey=JOURNEY,
        detail={"request_id": str(req.id), "amount_minor": amount, "reason": reason},
    )
    return ClawbackOut(
        request_id=req.id, amount_minor=amount, paid_minor=req.paid_minor, clawed_back_minor=clawed + amount
    )
