"""The MDF journey's reports: fund utilization and the return on each request (won deals),
scoped to the caller, and their CSV form."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, scope_to_principal
from journeys.deal import contract as deal
from journeys.mdf import ledger
from journeys.mdf.domain import EntryKind, defuse_cell
from journeys.mdf.models import MdfEntry, MdfFund, MdfRequest
from journeys.mdf.schemas import RoiRow, UtilizationRow
from store.models import Partner


async def utilization(
    session: AsyncSession, principal: Principal, *, period: str | None, partner_id: uuid.UUID | None
) -> list[UtilizationRow]:
    # The funds asked for: the sums below read only their entries and requests, not the whole
    # ledger (a CAM's portfolio at 10,000 partners: bench/README.md).
    funds = scope_to_principal(
        select(MdfFund.id).join(Partner, Partner.id == MdfFund.partner_id), principal, MdfFund.partner_id
    )
    if period:
        funds = funds.where(MdfFund.period == period)
    if partner_id:
        funds = funds.where(MdfFund.partner_id == partner_id)
    sums = (
        select(
            MdfEntry.fund_id,
            *[
                func.coalesce(func.sum(MdfEntry.amount_minor).filter(MdfEntry.kind == k.value), 0).label(k.value)
                for k in EntryKind
            ],
        )
        .where(MdfEntry.fund_id.in_(funds))
        .group_by(MdfEntry.fund_id)
        .subquery()
    )
    asked = (
        select(
            MdfRequest.fund_id,
            func.sum(MdfRequest.amount_minor).label("requested"),
            func.coalesce(func.sum(MdfRequest.approved_minor), 0).label("approved"),
        )
        .where(MdfRequest.fund_id.in_(funds))
        .group_by(MdfRequest.fund_id)
        .subquery()
    )
    stmt = (
        select(MdfFund, Partner.name, sums, asked.c.requested, asked.c.approved)
        .join(Partner, Partner.id == MdfFund.partner_id)
        .outerjoin(sums, sums.c.fund_id == MdfFund.id)
        .outerjoin(asked, asked.c.fund_id == MdfFund.id)
        .order_by(MdfFund.period.desc(), Partner.name, MdfFund.id)
    )
    stmt = scope_to_principal(stmt, principal, MdfFund.partner_id)
    if period:
        stmt = stmt.where(MdfFund.period == period)
    if partner_id:
        stmt = stmt.where(MdfFund.partner_id == partner_id)
    out = []
    for row in (await session.execute(stmt.limit(10_000))).all():
        fund, name = row[0], row[1]
        m = row._mapping
        b = ledger.balances((k.value, int(m[k.value] or 0)) for k in EntryKind)
        out.append(
            UtilizationRow(
                partner_id=fund.partner_id,
                partner_name=name,
                period=fund.period,
                currency=fund.currency,
                allocated_minor=b.allocated,
                requested_minor=int(m["requested"] or 0),
                approved_minor=int(m["approved"] or 0),
                claimed_minor=b.claimed,
                paid_minor=b.paid,
                expired_minor=b.expired,
                utilization_percent=round(100 * b.paid / b.funded, 2) if b.funded > 0 else None,
            )
        )
    return out


async def roi(
    session: AsyncSession, principal: Principal, *, period: str | None, partner_id: uuid.UUID | None
) -> list[RoiRow]:
    won = deal.won_by_mdf_request()
    stmt = (
        select(
            MdfRequest.partner_id,
            Partner.name,
            MdfRequest.period,
            MdfRequest.currency,
            func.sum(MdfRequest.paid_minor),
            func.coalesce(func.sum(won.c.won), 0),
        )
        .join(Partner, Partner.id == MdfRequest.partner_id)
        .outerjoin(won, won.c.mdf_request_id == MdfRequest.id)
        .group_by(MdfRequest.partner_id, Partner.name, MdfRequest.period, MdfRequest.currency)
        .order_by(MdfRequest.period.desc(), Partner.name)
    )
    stmt = scope_to_principal(stmt, principal, MdfRequest.partner_id)
    if period:
        stmt = stmt.where(MdfRequest.period == period)
    if partner_id:
        stmt = stmt.where(MdfRequest.partner_id == partner_id)
    return [
        RoiRow(
            partner_id=pid,
            partner_name=name,
            period=p,
            currency=cur,
            paid_minor=int(paid),
            won_revenue_minor=int(w),
            roi=round(int(w) / int(paid), 2) if paid else None,
        )
        for pid, name, p, cur, paid, w in (await session.execute(stmt.limit(10_000))).all()
    ]


def as_csv(rows: Sequence[BaseModel], model: type[BaseModel]) -> str:
    buf = io.StringIO()
    fields = list(model.model_fields)
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        values = row.model_dump(mode="json")
        # A cell that a spreadsheet would run as a formula is written as text.
        writer.writerow({k: defuse_cell(v) if isinstance(v, str) else v for k, v in values.items()})
    return buf.getvalue()
