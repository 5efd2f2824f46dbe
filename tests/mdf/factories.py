"""Rows and inputs of the MDF journey's tests, written through the real models and the real
ledger (a fund with its allocation, a request with its reservation)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from domain import actors
from domain.journeys import Coverage
from domain.policy import ProgramPolicy
from journeys.mdf import ledger
from journeys.mdf.domain import MdfInput, MdfState
from journeys.mdf.models import MdfFund, MdfRequest
from store.models import Partner


async def make_fund(sessionmaker, partner: Partner, policy: ProgramPolicy | None = None, *, at=None) -> MdfFund:
    async with sessionmaker() as session, session.begin():
        fund, _ = await ledger.ensure_fund(
            session, partner, policy or ProgramPolicy(), policy_version=1, task_queue="unused", at=at
        )
        return fund


async def make_request(
    sessionmaker,
    partner: Partner,
    *,
    amount_minor: int = 300_000,
    activity_type: str = "event",
    share: float = 50,
    start: date | None = None,
    days: int = 10,
    policy: ProgramPolicy | None = None,
) -> MdfRequest:
    fund = await make_fund(sessionmaker, partner, policy)
    start = start or (datetime.now(UTC) + timedelta(days=5)).date()
    req = MdfRequest(
        id=uuid.uuid4(),
        partner_id=partner.id,
        fund_id=fund.id,
        period=fund.period,
        activity_type=activity_type,
        title="Spring roadshow",
        planned_start=start,
        planned_end=start + timedelta(days=days),
        amount_minor=amount_minor,
        currency="USD",
        requested_amount_minor=amount_minor,
        requested_currency="USD",
        partner_share_percent=share,
        expected_outcomes="20 qualified leads",
        state=MdfState.pending_approval.value,
        created_by=actors.partner(partner.id),
    )
    async with sessionmaker() as session, session.begin():
        session.add(req)
        await session.flush()
        ok, _, _ = await ledger.reserve(session, fund, req.id, amount_minor, key=f"{req.id}:created", by="system")
        assert ok, "the test fund covers the request"
    return req


def mdf_input(req: MdfRequest, partner: Partner) -> MdfInput:
    return MdfInput(
        request_id=str(req.id),
        partner_id=str(partner.id),
        partner_name=partner.name,
        coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
        fund_id=str(req.fund_id),
        period=req.period,
        activity_type=req.activity_type,
        title=req.title,
        planned_start=req.planned_start,
        planned_end=req.planned_end,
        amount_minor=req.amount_minor,
        currency=req.currency,
        requested_amount_minor=req.requested_amount_minor,
        requested_currency=req.requested_currency,
        partner_share_percent=req.partner_share_percent,
        expected_outcomes=req.expected_outcomes,
    )
