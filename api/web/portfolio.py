"""The Portfolio page's model: the partners this user may see, with the columns every journey
contributes (`api.web.items.column`), filtered, sorted and exportable as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, scope_to_principal
from api.web import providers  # noqa: F401  (registers every column)
from api.web.items import COLUMNS, Column, TodayContext, Value
from domain.sheets import csv_cell
from store import repo
from store.models import Cam, Partner

BASE = [Column("name", "Partner", 0), Column("tier", "Tier", 1), Column("status", "Status", 2)]
OPS_BASE = [Column("cam", "CAM", 3)]
MAX_PARTNERS = 2000


@dataclass(frozen=True)
class Filters:
    q: str = ""
    tier: str = ""
    status: str = ""
    sort: str = "name"
    desc: bool = False


@dataclass(frozen=True)
class Portfolio:
    columns: list[Column]
    rows: list[dict[str, Value]]  # by column key, plus "id"
    filters: Filters


def _sort_key(value: Value) -> tuple:
    if value is None:
        return (2, "")
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value).casefold())


async def build(session: AsyncSession, principal: Principal, filters: Filters) -> Portfolio:
    stmt = scope_to_principal(select(Partner, Cam.name).outerjoin(Cam, Cam.id == Partner.cam_id), principal, Partner.id)
    if filters.tier:
        stmt = stmt.where(Partner.tier == filters.tier)
    if filters.status:
        stmt = stmt.where(Partner.status == filters.status)
    if filters.q:
        stmt = stmt.where(Partner.name.icontains(filters.q, autoescape=True))
    found = (await session.execute(stmt.order_by(Partner.name).limit(MAX_PARTNERS))).all()
    ids = [p.id for p, _ in found]
    rows: dict[uuid.UUID, dict[str, Value]] = {
        p.id: {"id": str(p.id), "name": p.name, "tier": p.tier, "status": p.status, "cam": cam_name or "—"}
        for p, cam_name in found
    }
    columns = BASE + (OPS_BASE if principal.role.value == "ops" else [])
    policy = (await repo.current_policy(session)).policy
    ctx = TodayContext(session=session, principal=principal, policy=policy, now=datetime.now(UTC))
    for col, fn in sorted(COLUMNS.values(), key=lambda c: (c[0].order, c[0].key)):
        values = await fn(session, ids, ctx) if ids else {}
        if values is None:
            continue  # nothing to show (e.g. no scorecard yet): no column
        columns.append(col)
        for pid, row in rows.items():
            row[col.key] = values.get(pid)
    keys = {c.key for c in columns}
    sort = filters.sort if filters.sort in keys else "name"
    ordered = sorted(rows.values(), key=lambda r: _sort_key(r.get(sort)), reverse=filters.desc)
    return Portfolio(
        columns=columns, rows=ordered, filters=Filters(filters.q, filters.tier, filters.status, sort, filters.desc)
    )


def to_csv(portfolio: Portfolio) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id"] + [c.label for c in portfolio.columns])
    for row in portfolio.rows:
        writer.writerow([row["id"]] + [csv_cell(row.get(c.key)) for c in portfolio.columns])
    return out.getvalue()
