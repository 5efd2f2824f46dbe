"""The MDF journey's reports: fund utilization and the return on each request (won deals),
scoped to the caller, and their CSV form."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import Principal, scope_to_principal
from domain.errors import NotFound
from journeys.deal import contract as deal
from journeys.mdf import ledger
from journeys.mdf.domain import ENTRY_KINDS, EntryKind, defuse_cell
from journeys.mdf.models import MdfEntry, MdfFund, MdfRequest
from journeys.mdf.schemas import RoiRow, UtilizationRow
from store.models import Partner

PAGE = 1000  # funds per read of the streamed CSV (and the most a JSON page may ask for in one read)
LIST_PAGE = 100  # funds per JSON page of the utilization report unless `limit` says otherwise (as every list)


def _funds_page(principal: Principal, *, period: str | None, partner_id: uuid.UUID | None) -> Select[Any]:
    """The caller's funds with their partner's name, in the report's order: newest period first,
    then partner name, then fund id (the keyset)."""
    stmt = (
        select(MdfFund, Partner.name)
        .join(Partner, Partner.id == MdfFund.partner_id)
        .order_by(MdfFund.period.desc(), Partner.name, MdfFund.id)
    )
    stmt = scope_to_principal(stmt, principal, MdfFund.partner_id)
    if period:
        stmt = stmt.where(MdfFund.period == period)
    if partner_id:
        stmt = stmt.where(MdfFund.partner_id == partner_id)
    return stmt


def _after(stmt: Select[Any], period: str, name: str, fund_id: uuid.UUID) -> Select[Any]:
    """`stmt` continued after the row (period, name, fund id) of its mixed order (period
    descending, then name and id ascending)."""
    return stmt.where(
        or_(
            MdfFund.period < period,
            and_(MdfFund.period == period, tuple_(Partner.name, MdfFund.id) > tuple_(name, fund_id)),
        )
    )


async def fund_position(session: AsyncSession, principal: Principal, fund_id: uuid.UUID) -> tuple[str, str]:
    """The (period, partner name) of the caller's fund `fund_id`, where `?after=` continues; 404
    naming the parameter when it is not one of the caller's funds."""
    position = (
        await session.execute(
            scope_to_principal(
                select(MdfFund.period, Partner.name)
                .join(Partner, Partner.id == MdfFund.partner_id)
                .where(MdfFund.id == fund_id),
                principal,
                MdfFund.partner_id,
            )
        )
    ).first()
    if position is None:
        raise NotFound(f"after: no MDF fund with id {fund_id}")
    return position[0], position[1]


async def utilization(
    session: AsyncSession,
    principal: Principal,
    *,
    period: str | None,
    partner_id: uuid.UUID | None,
    limit: int = PAGE,
    after: uuid.UUID | None = None,
) -> list[UtilizationRow]:
    """One page of the report: at most `limit` funds after the fund `after` (404 naming it when it
    is not one of the caller's). Only the page's funds are summed, so the last page of a quarter
    at 10,000 partners costs what the first does."""
    stmt = _funds_page(principal, period=period, partner_id=partner_id)
    if after is not None:
        stmt = _after(stmt, *await fund_position(session, principal, after), after)
    page = (await session.execute(stmt.limit(limit))).all()
    if not page:
        return []
    ids = [fund.id for fund, _ in page]
    sums: dict[uuid.UUID, Mapping[str, Any]] = {
        row[0]: dict(row._mapping)
        for row in (
            await session.execute(
                select(
                    MdfEntry.fund_id,
                    *[
                        func.coalesce(func.sum(MdfEntry.amount_minor).filter(MdfEntry.kind == k.value), 0).label(
                            k.value
                        )
                        for k in EntryKind
                    ],
                )
                .where(MdfEntry.fund_id.in_(ids))
                .group_by(MdfEntry.fund_id)
            )
        ).all()
    }
    asked = {
        fund_id: (int(requested or 0), int(approved or 0))
        for fund_id, requested, approved in (
            await session.execute(
                select(
                    MdfRequest.fund_id,
                    func.sum(MdfRequest.amount_minor),
                    func.coalesce(func.sum(MdfRequest.approved_minor), 0),
                )
                .where(MdfRequest.fund_id.in_(ids))
                .group_by(MdfRequest.fund_id)
            )
        ).all()
    }
    out = []
    for fund, name in page:
        m: Mapping[str, Any] = sums.get(fund.id, {})
        b = ledger.balances((k, int(m.get(k) or 0)) for k in ENTRY_KINDS)
        requested, approved = asked.get(fund.id, (0, 0))
        out.append(
            UtilizationRow(
                fund_id=fund.id,
                partner_id=fund.partner_id,
                partner_name=name,
                period=fund.period,
                currency=fund.currency,
                allocated_minor=b.allocated,
                requested_minor=requested,
                approved_minor=approved,
                claimed_minor=b.claimed,
                paid_minor=b.paid,
                expired_minor=b.expired,
                utilization_percent=round(100 * b.paid / b.funded, 2) if b.funded > 0 else None,
            )
        )
    return out


async def utilization_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    *,
    period: str | None,
    partner_id: uuid.UUID | None,
    after: uuid.UUID | None = None,
) -> AsyncIterator[str]:
    """The whole report as CSV, streamed a page at a time (memory bounded by one page, however
    many funds the quarter has); each page read in its own short session."""
    yield csv_header(UtilizationRow)
    while True:
        async with sessionmaker() as session:
            rows = await utilization(session, principal, period=period, partner_id=partner_id, after=after)
        if not rows:
            return
        yield csv_rows(rows)
        after = rows[-1].fund_id


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


def csv_header(model: type[BaseModel]) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=list(model.model_fields)).writeheader()
    return buf.getvalue()


def csv_rows(rows: Sequence[BaseModel]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(type(rows[0]).model_fields))
    for row in rows:
        values = row.model_dump(mode="json")
        # A cell that a spreadsheet would run as a formula is written as text.
        writer.writerow({k: defuse_cell(v) if isinstance(v, str) else v for k, v in values.items()})
    return buf.getvalue()


def as_csv(rows: Sequence[BaseModel], model: type[BaseModel]) -> str:
    return csv_header(model) + csv_rows(rows)
