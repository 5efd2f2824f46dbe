"""The MDF funds ledger: every money movement is an entry; every balance is a sum of entries.

Writes to one fund are serialized by its advisory lock (`mdf:fund:<id>`), so a reservation
reads the available balance and writes its entry atomically: concurrent requests can never
reserve more than is available. Each entry has an idempotency key: a retried step writes once."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Executable, Select, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain import actors
from domain.journeys import Coverage
from domain.policy import ProgramPolicy
from journeys.mdf.domain import JOURNEY, Balances, EntryKind, MdfFundInput, balances, convert, period_named, period_of
from journeys.mdf.models import MdfEntry, MdfFund
from journeys.mdf.policy import MdfPolicy
from store import locks, repo
from store.db import bound, table_of
from store.models import JourneyRecord, Partner

FUND_WORKFLOW = "MdfFundWorkflow"
# A named period (an allocation, a request drawing from a later fund) starts at most this far ahead:
# a request for an activity this quarter cannot open and draw from a fund centuries ahead.
FUND_AHEAD = timedelta(days=366)


def fund_workflow_id(partner_id: object, period: str) -> str:
    """`mdf-fund-<partner id>-<period>`: the journey that expires the fund's unreserved balance."""
    return f"{JOURNEY}-fund-{partner_id}-{period}"


@dataclass(frozen=True)
class FundRef:
    """What the ledger's writes need of a fund (an `MdfFund` has both): its id and its partner."""

    id: uuid.UUID
    partner_id: uuid.UUID


async def lock_fund(session: AsyncSession, fund_id: uuid.UUID) -> None:
    await locks.lock(session, f"mdf:fund:{fund_id}")


async def fund_balances(session: AsyncSession, fund_id: uuid.UUID) -> Balances:
    rows = await session.execute(
        select(MdfEntry.kind, func.sum(MdfEntry.amount_minor))
        .where(MdfEntry.fund_id == fund_id)
        .group_by(MdfEntry.kind)
    )
    return balances((kind, int(total)) for kind, total in rows.all())


async def held_for(session: AsyncSession, request_id: uuid.UUID) -> int:
    """What a request holds: its reservations less releases and payments."""
    rows = await session.execute(
        select(MdfEntry.kind, func.sum(MdfEntry.amount_minor))
        .where(MdfEntry.request_id == request_id)
        .group_by(MdfEntry.kind)
    )
    return balances((kind, int(total)) for kind, total in rows.all()).reserved


async def holdings(session: AsyncSession, fund_id: uuid.UUID, request_id: uuid.UUID) -> tuple[int, Balances]:
    """`held_for(request_id)` and `fund_balances(fund_id)` in one read."""
    rows = (await session.execute(_holdings(), {"fund_id": fund_id, "request_id": request_id})).all()
    fund = balances((kind, int(total)) for kind, total, _ in rows if total is not None)
    held = balances((kind, int(total)) for kind, _, total in rows if total is not None)
    return held.reserved, fund


@functools.cache
def _holdings() -> Select:
    """`holdings`' read, built once: each kind's total in the fund and for the request."""
    amount = MdfEntry.amount_minor
    in_fund = MdfEntry.fund_id == bindparam("fund_id", type_=MdfEntry.fund_id.type)
    for_request = MdfEntry.request_id == bindparam("request_id", type_=MdfEntry.request_id.type)
    return (
        select(MdfEntry.kind, func.sum(amount).filter(in_fund), func.sum(amount).filter(for_request))
        .where(or_(in_fund, for_request))
        .group_by(MdfEntry.kind)
    )


async def add_entry(
    session: AsyncSession,
    fund: MdfFund | FundRef,
    kind: EntryKind,
    amount_minor: int,
    *,
    key: str | None,
    by: str,
    request_id: uuid.UUID | str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """One entry (in the caller's transaction); False when its key was already used."""
    values = entry_values(fund.id, fund.partner_id, kind, amount_minor, key, by, request_id, reason, detail)
    return (await session.execute(_entry(key is not None), values)).scalar_one_or_none() is not None


def entry_values(
    fund_id: uuid.UUID,
    partner_id: uuid.UUID,
    kind: EntryKind,
    amount_minor: int,
    key: str | None,
    by: str,
    request_id: uuid.UUID | str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry's row by column name (`_ENTRY_COLUMNS`): `add_entry`'s INSERT, or a row written
    with its fund (`ensure_fund`)."""
    return {
        "fund_id": fund_id,
        "partner_id": partner_id,
        "kind": kind.value,
        "amount_minor": amount_minor,
        "idempotency_key": key,
        "by": by,
        "reason": reason,
        "detail": detail or {},
        "request_id": uuid.UUID(str(request_id)) if request_id else None,
    }


_ENTRY_COLUMNS = (
    "fund_id",
    "partner_id",
    "kind",
    "amount_minor",
    "idempotency_key",
    "by",
    "reason",
    "detail",
    "request_id",
)


@functools.cache
def _entry(keyed: bool) -> Executable:
    """`add_entry`'s INSERT, built once (a keyed entry is written once per key)."""
    entries = table_of(MdfEntry)
    stmt = insert(entries).values(bound(MdfEntry, *_ENTRY_COLUMNS))
    if keyed:
        stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return stmt.returning(entries.c.id)


async def ensure_fund(
    session: AsyncSession,
    partner: Partner,
    policy: ProgramPolicy,
    *,
    policy_version: int,
    task_queue: str,
    at: datetime | None = None,
    period: str | None = None,
) -> tuple[MdfFund, bool]:
    """The partner's fund for the period of `at` (or the named period), created on first use with
    its tier's allocation and the journey record of `mdf-fund-…` (started by the caller or by the
    API's reconciler), all in the caller's transaction; and whether this transaction opened it
    (nobody else sees it until the commit: it needs no lock of its own, and holds its allocation
    alone)."""
    rules = policy.section(MdfPolicy)
    now = at or datetime.now().astimezone()
    p = period_named(period, rules.period, rules.time_zone) if period else period_of(now, rules.period, rules.time_zone)
    if p.starts_at > now + FUND_AHEAD:
        raise ValueError(f"{p.label!r} starts more than a year ahead: a fund opens at most a year before its period")
    await locks.lock(session, f"mdf:fund:{partner.id}:{p.label}")
    fund = await session.scalar(select(MdfFund).where(MdfFund.partner_id == partner.id, MdfFund.period == p.label))
    if fund is not None:
        return fund, False
    expires_at = p.ends_at + policy.days(rules.expiry_grace_days)
    fund = MdfFund(
        id=uuid.uuid4(),
        partner_id=partner.id,
        period=p.label,
        currency=rules.currency,
        starts_at=p.starts_at,
        ends_at=p.ends_at,
        expires_at=expires_at,
    )
    inp = MdfFundInput(
        fund_id=str(fund.id),
        partner_id=str(partner.id),
        partner_name=partner.name,
        coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
        period=p.label,
        currency=rules.currency,
        expires_at=expires_at,
        policy_version=policy_version,
    )
    record = {
        "workflow_id": fund_workflow_id(partner.id, p.label),
        "partner_id": partner.id,
        "journey": JOURNEY,
        "state": "open",
        "workflow_type": FUND_WORKFLOW,
        "task_queue": task_queue,
        "start_input": inp.model_dump(mode="json"),
    }
    rows = [repo.NewRow(JourneyRecord, record, conflict=("workflow_id",))]
    allocation = rules.allocations[partner.tier]  # type: ignore[index]
    if allocation:
        entry = entry_values(
            fund.id,
            partner.id,
            EntryKind.allocation,
            allocation,
            f"mdf-fund:{fund.id}:allocation",
            actors.SYSTEM,
            reason=f"{partner.tier} allocation for {p.label}",
            detail={"policy_version": policy_version},
        )
        rows.append(repo.NewRow(MdfEntry, entry, conflict=("idempotency_key",)))
    # The fund, its journey record and its allocation: one statement (`repo.write_created`).
    await repo.write_created(session, fund, rows)
    return fund, True


async def reserve(
    session: AsyncSession, fund: MdfFund | FundRef, request_id: uuid.UUID, target_minor: int, *, key: str, by: str
) -> tuple[bool, int, int]:
    """Make the request hold exactly `target_minor` (a reservation of the difference, or its
    release), under the fund's lock. Returns (done, held now, available now); not done when the
    fund cannot cover the difference (nothing written)."""
    await lock_fund(session, fund.id)
    held, in_fund = await holdings(session, fund.id, request_id)
    available = in_fund.available
    diff = target_minor - held
    if diff == 0:
        return True, held, available
    if diff > available:
        return False, held, available
    kind, amount = (EntryKind.reservation, diff) if diff > 0 else (EntryKind.release, -diff)
    if not await add_entry(
        session, fund, kind, amount, key=key, by=by, request_id=request_id
    ):  # the key was used before (by another amount): what the ledger holds now
        held, in_fund = await holdings(session, fund.id, request_id)
        return True, held, in_fund.available
    # Under the fund's lock nothing else moved: the request holds the target, and a reservation
    # takes from what is available as a release gives back (`Balances.available`).
    return True, target_minor, available - diff


async def accrue_for_deal(
    session: AsyncSession,
    partner: Partner,
    deal_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    policy: ProgramPolicy,
    *,
    policy_version: int,
    task_queue: str,
) -> int:
    """A closed-won deal accrues the policy's percentage of its revenue to the partner's fund of
    the period, up to the period's cap (once per deal). Returns the amount accrued."""
    rules = policy.section(MdfPolicy)
    if rules.accrual_percent <= 0 or rules.accrual_cap_minor <= 0:
        return 0
    if currency != rules.currency:
        rate = rules.exchange_rates.get(currency)
        if rate is None:
            return 0
        amount_minor = convert(amount_minor, rate)
    fund, opened = await ensure_fund(session, partner, policy, policy_version=policy_version, task_queue=task_queue)
    accrued = 0  # a fund this transaction opened holds its allocation alone
    if not opened:
        await lock_fund(session, fund.id)
        accrued = (await fund_balances(session, fund.id)).accrued
    share = Decimal(amount_minor) * Decimal(str(rules.accrual_percent)) // 100  # exact, not float
    amount = min(int(share), rules.accrual_cap_minor - accrued)
    if amount <= 0:
        return 0
    written = await add_entry(
        session,
        fund,
        EntryKind.accrual,
        amount,
        key=f"mdf-accrual:deal:{deal_id}",
        by=actors.SYSTEM,
        reason=f"{rules.accrual_percent:g}% of closed-won deal {deal_id}",
        detail={"deal_id": str(deal_id)},
    )
    return amount if written else 0
