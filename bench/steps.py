"""A journey's steps one at a time: the CPU and wall time of one call of each MDF step activity
(a state change, a reservation, a payment), of a deal's decision and of its win (closing stage,
state and the accrual to the fund it opens), and of an email (`notify`: queued, sent to the SMTP
sink, marked sent), called directly against the stack's PostgreSQL and sink, without Temporal.
A step's own cost, steadier than a journey's rate on a noisy machine (bench/README.md,
session 44), and the statements each sends."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

from bench import harness, seed
from bench.deal import deal_rows
from bench.harness import Section, Stack
from bench.mdf import seed_requests


async def _timed(calls: int, one: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """Wall and CPU ms per call over `calls` calls, after one untimed."""
    await one(-1)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(calls):
        await one(i)
    return (time.perf_counter() - t0) * 1000 / calls, (time.process_time() - c0) * 1000 / calls


def _counted() -> tuple[list[str], Callable[[], None]]:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", capture)
    return sent, lambda: event.remove(Engine, "before_cursor_execute", capture)


async def run(st: Stack, n: int) -> list[Section]:
    from temporalio.testing import ActivityEnvironment

    from activities.common import CommonActivities
    from core.registry import make_mailer
    from domain.journeys import NotifyInput
    from journeys.deal.activities import DealActivities
    from journeys.deal.domain import DealStage, DealStageInput, DealState, DealStateInput
    from journeys.mdf.activities import MdfActivities
    from journeys.mdf.domain import MdfState, MdfStateInput, Payment, PaymentInput, ReserveInput

    calls = max(200, min(n, 1000))
    # 50 partners for the MDF steps, and a fresh deal for every deal call (the two untimed ones
    # too) of a partner without a fund: each win opens one.
    partners = await harness.seed_partners(st, 50 + 2 * (calls + 2), tier="gold")
    rows = await seed_requests(st, partners[:50])
    deals = deal_rows(partners[50:])
    await asyncio.to_thread(seed.write, st.settings.database_url, seed.Program(deals=deals))
    fresh = iter(deals)
    env = ActivityEnvironment()  # the win's fund journey takes the activity's task queue
    mdf = MdfActivities(
        st.sessionmaker,
        link_secret=st.settings.link_secret,
        public_base_url="http://bench.test",
        ops_email="ops@b.test",
    )
    common = CommonActivities(st.sessionmaker, make_mailer(st.settings, pooled=True), st.settings.ops_email)
    deal = DealActivities(
        st.sessionmaker, link_secret=st.settings.link_secret, public_base_url="http://bench.test", ops_email="o@b.test"
    )

    def row(i: int) -> dict:
        return rows[i % len(rows)]

    def key(what: str) -> str:
        return f"bench-{what}-{uuid.uuid4().hex}"

    async def state_change(i: int) -> None:
        await mdf.record_state(
            MdfStateInput(
                idempotency_key=key("state"),
                request_id=str(row(i)["request"].id),
                state=MdfState.running,
                by="ops:bench",
                at=datetime.now(UTC),
            )
        )

    async def reservation(i: int) -> None:
        target = 50_000 - (i % 2) * 1_000  # alternately a release and a reservation of 10.00
        await mdf.reserve(
            ReserveInput(
                idempotency_key=key("reserve"), request_id=str(row(i)["request"].id), target_minor=target, by="bench"
            )
        )

    async def payment(i: int) -> None:
        pay = Payment(reference=f"P{i}", amount_minor=1, paid_on=date.today(), by="ops:bench")
        await mdf.record_payment(
            PaymentInput(idempotency_key=key("payment"), request_id=str(row(i)["request"].id), payment=pay)
        )

    def deal_state(d: dict, state, stage_change=None):
        return DealStateInput(
            idempotency_key=key("deal"),
            deal_id=str(d["id"]),
            state=state,
            by=f"partner:{d['partner_id']}",
            at=datetime.now(UTC),
            stage_change=stage_change,
        )

    async def decision(i: int) -> None:
        await env.run(deal.record_state, deal_state(next(fresh), DealState.approved))

    async def win(i: int) -> None:
        d = next(fresh)
        stage = DealStageInput(
            idempotency_key=key("stage"),
            deal_id=str(d["id"]),
            stage=DealStage.closed_won,
            by=f"partner:{d['partner_id']}",
            at=datetime.now(UTC),
        )
        await env.run(deal.record_state, deal_state(d, DealState.won, stage))

    async def email(i: int) -> None:
        r = row(i)
        result = await common.notify(
            NotifyInput(
                idempotency_key=key("notify"),
                partner_id=str(r["partner"]["id"]),
                journey="mdf",
                template="approved",
                recipients=["partner"],
                audit_action="notify.approved",
                context={
                    "partner_name": r["partner"]["name"],
                    "request_id": str(r["request"].id),
                    "title": "Partner webinar",
                    "activity_type": "webinar",
                    "amount": "USD 500.00",
                    "approved": "USD 500.00",
                    "paid": "USD 0.00",
                    "planned_start": "2026-01-01",
                    "planned_end": "2026-01-02",
                    "state": "approved",
                    "period": "2026-Q1",
                    "start_by": "2026-01-01",
                },
            )
        )
        if result.sent != 1:  # a template short of a value fails the email for good: not a send to time
            raise RuntimeError(f"the timed email was not sent: {result}")

    s = Section("steps: one call at a time, no Temporal (wall / CPU ms per call, statements)")
    s.add("calls per step", calls)
    for label, one in (
        ("MDF state change", state_change),
        ("MDF reservation", reservation),
        ("MDF payment", payment),
        ("deal decision", decision),
        ("deal win, opening a fund", win),
        ("email (notify, one recipient)", email),
    ):
        sent, stop = _counted()
        try:
            await one(1)  # a call that writes (the reservation: a release)
            statements = len(sent)
        finally:
            stop()
        wall, cpu = await _timed(calls, one)
        s.add(label, f"{wall:.2f} / {cpu:.2f}   ({statements} statements)")
    return [s]
