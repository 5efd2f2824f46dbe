"""The funds ledger against PostgreSQL: random sequences of money movements on a real fund. The
test keeps its own list of the entries it wrote and sums it itself; `ledger.fund_balances` must
agree after every step, and the available balance never goes below zero (a reservation the fund
cannot cover is refused and writes nothing)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.mdf import ledger
from journeys.mdf.domain import EntryKind
from journeys.mdf.models import MdfEntry, MdfRequest
from tests.helpers.factories import make_partner
from tests.mdf.factories import make_fund

REQUESTS = 3
amounts = st.integers(min_value=1, max_value=400_000)
operations = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["allocation", "accrual", "clawback"]), amounts),
        st.tuples(st.just("adjustment"), st.integers(-400_000, 400_000).filter(bool)),
        st.tuples(st.just("reserve"), st.integers(0, REQUESTS - 1), st.integers(0, 600_000)),
        st.tuples(st.just("pay"), st.integers(0, REQUESTS - 1), amounts),
        st.tuples(st.just("expire")),
    ),
    min_size=1,
    max_size=14,
)


async def requests_of(sessionmaker, fund, n: int) -> list[uuid.UUID]:
    """`n` request rows of the fund, holding nothing yet (entries name their request)."""
    rows = [
        MdfRequest(
            id=uuid.uuid4(),
            partner_id=fund.partner_id,
            fund_id=fund.id,
            period=fund.period,
            activity_type="event",
            title=f"request {i}",
            planned_start=date(2027, 1, 4),
            planned_end=date(2027, 1, 5),
            amount_minor=1,
            currency="USD",
            requested_amount_minor=1,
            requested_currency="USD",
            partner_share_percent=50,
            state="pending_approval",
            created_by="test",
        )
        for i in range(n)
    ]
    async with sessionmaker() as session, session.begin():
        session.add_all(rows)
    return [r.id for r in rows]


class Model:
    """What the test wrote, and every balance summed from it by hand."""

    def __init__(self) -> None:
        self.written: list[tuple[str, int, uuid.UUID | None]] = []

    def total(self, kind: str, request: uuid.UUID | None = None) -> int:
        return sum(a for k, a, r in self.written if k == kind and (request is None or r == request))

    def held(self, request: uuid.UUID | None = None) -> int:
        return self.total("reservation", request) - self.total("release", request) - self.total("payment", request)

    @property
    def funded(self) -> int:
        return self.total("allocation") + self.total("accrual") + self.total("adjustment")

    @property
    def available(self) -> int:
        return self.funded - self.held() - self.total("payment") - self.total("expiry")

    @property
    def paid(self) -> int:
        return self.total("payment") - self.total("clawback")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_random_ledger_operations_keep_every_balance_a_sum(sessionmaker, ops):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    fund = await make_fund(sessionmaker, partner)  # the registered allocation: 2,500.00
    model = Model()
    model.written.append(("allocation", 250_000, None))
    requests = await requests_of(sessionmaker, fund, REQUESTS)
    for step, op in enumerate(ops):
        key = f"test:{fund.id}:{step}"
        async with sessionmaker() as session, session.begin():
            await ledger.lock_fund(session, fund.id)
            kind = op[0]
            if kind == "reserve":
                request, target = requests[op[1]], op[2]
                before = model.held(request)
                ok, held, available = await ledger.reserve(session, fund, request, target, key=key, by="test")
                if target - before > model.available:
                    assert not ok and held == before, (op, model.available)
                else:
                    assert ok, (op, model.available)
                    if target > before:
                        model.written.append(("reservation", target - before, request))
                    elif target < before:
                        model.written.append(("release", before - target, request))
                    assert held == target
                assert available == model.available
                continue
            if kind == "pay":
                request = requests[op[1]]
                entry = ("payment", min(op[2], model.held(request)), request)  # pays what the request holds
            elif kind == "expire":
                entry = ("expiry", model.available, None)  # what expire_fund writes: the available balance
            elif kind == "clawback":
                entry = (kind, min(op[1], model.paid), None)
            elif kind == "adjustment" and op[1] < 0:
                entry = (kind, -min(-op[1], model.available), None)  # a correction never overdraws
            else:
                entry = (kind, op[1], None)
            if entry[1] == 0:
                continue
            kind_, amount, request = entry
            assert await ledger.add_entry(
                session, fund, EntryKind(kind_), amount, key=key, by="test", request_id=request
            )
            assert not await ledger.add_entry(
                session, fund, EntryKind(kind_), amount, key=key, by="test", request_id=request
            )  # a retried step writes once
            model.written.append(entry)
        async with sessionmaker() as session:
            b = await ledger.fund_balances(session, fund.id)
            holding = [await ledger.held_for(session, r) for r in requests]
            rows = (
                await session.execute(
                    select(MdfEntry.kind, MdfEntry.amount_minor, MdfEntry.request_id).where(MdfEntry.fund_id == fund.id)
                )
            ).all()
        assert Counter((k, a, r) for k, a, r in rows) == Counter(model.written)
        assert b.available >= 0
        assert (b.allocated, b.accrued, b.adjusted) == (
            model.total("allocation"),
            model.total("accrual"),
            model.total("adjustment"),
        )
        assert b.funded == model.funded
        assert b.reserved == model.held() == sum(holding) and holding == [model.held(r) for r in requests]
        assert (b.paid, b.paid_gross, b.expired) == (model.paid, model.total("payment"), model.total("expiry"))
        assert b.available == model.available, (op, b, model.written)


async def test_concurrent_reservations_never_overdraw(sessionmaker):
    """Ten requests of 600.00 race for a 2,500.00 fund: exactly four get their funds."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    fund = await make_fund(sessionmaker, partner)
    requests = await requests_of(sessionmaker, fund, 10)

    async def reserve(request: uuid.UUID) -> bool:
        async with sessionmaker() as session, session.begin():
            ok, _, _ = await ledger.reserve(session, fund, request, 60_000, key=f"race:{request}", by="test")
            return ok

    results = await asyncio.gather(*(reserve(r) for r in requests))
    async with sessionmaker() as session:
        b = await ledger.fund_balances(session, fund.id)
    assert sum(results) == 4 and (b.reserved, b.available) == (240_000, 10_000)


async def test_accrual_of_closed_won_deals(sessionmaker):
    """A percentage of each closed-won deal, in minor units rounded down exactly (0.57% of 100.00 is
    0.57), converted at the policy's rate, once per deal, up to the period's cap."""
    policy = ProgramPolicy().model_copy(deep=True)
    policy.mdf.accrual_percent, policy.mdf.accrual_cap_minor = 0.57, 1_000
    policy.mdf.exchange_rates = {"EUR": "1.10"}
    partner = await make_partner(sessionmaker, tier=Tier.registered)

    async def accrue(amount: int, currency: str = "USD", deal: uuid.UUID | None = None) -> int:
        async with sessionmaker() as session, session.begin():
            return await ledger.accrue_for_deal(
                session, partner, deal or uuid.uuid4(), amount, currency, policy, policy_version=1, task_queue="unused"
            )

    deal = uuid.uuid4()
    assert await accrue(10_000, deal=deal) == 57
    assert await accrue(10_000, deal=deal) == 0  # once per deal
    assert await accrue(100_000, "EUR") == 627  # 0.57% of EUR 1,000.00 at 1.10
    assert await accrue(50_000, "GBP") == 0  # no rate: nothing
    assert await accrue(1_000_000) == 1_000 - 57 - 627  # up to the cap
    assert await accrue(1_000_000) == 0
    fund = await make_fund(sessionmaker, partner)
    async with sessionmaker() as session:
        b = await ledger.fund_balances(session, fund.id)
    assert (b.accrued, b.available) == (1_000, 250_000 + 1_000)
