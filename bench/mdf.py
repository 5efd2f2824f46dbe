"""MDF request-to-claim journey cost: N requests of `registered` partners for a pre-approved
activity type under the long-tail limit (approved by the policy, `mdf-{id}` started as the API
starts it, with its fund, allocation and reservation written through the real ledger), each
then started, claimed with its proof kinds, the claim approved by ops and paid in one payment,
every update's answer awaited; then the bare-Temporal baselines of the same shape. One-hour
policy days.

Business steps of one journey: the submitted email, record the approval, the approval email,
record the start, record the claim, the claim approval request, release the unclaimed part,
record the approved claim, its email, record the payment, record paid, the paid email, and
five webhook events (requested, approved, claim approved, payment, paid): 17."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import harness
from bench.harness import Section, Stack

BUSINESS_STEPS = 17
AMOUNT = 50_000  # USD 500.00: inside the registered tier's pre-approved limit


async def seed_requests(st: Stack, partners: list[dict]) -> list[dict]:
    """A fund per partner (with its tier's allocation) and one reserved request each."""
    from domain.policy import ProgramPolicy
    from journeys.mdf import ledger
    from journeys.mdf.domain import MdfState
    from journeys.mdf.models import MdfRequest
    from store import repo
    from store.models import Partner

    start = datetime.now(UTC).date()
    out = []
    async with st.sessionmaker() as session, session.begin():
        current = await repo.current_policy(session)
        policy: ProgramPolicy = current.policy
        for p in partners:
            partner = await session.get(Partner, p["id"])
            fund, _ = await ledger.ensure_fund(
                session, partner, policy, policy_version=current.version, task_queue=st.settings.task_queue
            )
            req = MdfRequest(
                id=uuid.uuid4(),
                partner_id=partner.id,
                fund_id=fund.id,
                period=fund.period,
                activity_type="webinar",
                title="Partner webinar",
                planned_start=start,
                planned_end=start + timedelta(days=1),
                amount_minor=AMOUNT,
                currency="USD",
                requested_amount_minor=AMOUNT,
                requested_currency="USD",
                partner_share_percent=50,
                expected_outcomes="",
                state=MdfState.pending_approval.value,
                awaiting_level=0,
                paid_minor=0,
                created_by=f"partner:{partner.id}",
            )
            session.add(req)
            await session.flush()
            ok, _, _ = await ledger.reserve(session, fund, req.id, AMOUNT, key=f"mdf-{req.id}:reserved", by="bench")
            assert ok
            out.append({"request": req, "fund": fund, "partner": p, "version": current.version})
    return out


def mdf_input(row: dict):
    from journeys.mdf.domain import MdfInput

    req, p = row["request"], row["partner"]
    return MdfInput(
        request_id=str(req.id),
        partner_id=str(p["id"]),
        partner_name=p["name"],
        coverage=harness.coverage(p),
        fund_id=str(row["fund"].id),
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
        policy_version=row["version"],
    )


async def fund_costs(st: Stack, rows: list[dict], task_queue: str) -> None:
    """The fund workflow of the first 50 requests' funds (`mdf-fund-…`, its input as the ledger
    wrote it) over a whole life compressed into two minutes: a policy version of 3 s days (its two
    expiry warnings, 30 and 7 days before, then the expiry; started 40 policy days before it),
    recorded as `mdf_fund` in the journey costs. A fund whose first task runs after a warning's
    time skips it, as in production: on an overloaded machine more funds would undercount."""
    from domain.policy import ProgramPolicy
    from journeys.mdf.domain import MdfFundInput
    from journeys.mdf.ledger import FUND_WORKFLOW, fund_workflow_id
    from store import repo
    from store.models import JourneyRecord

    async with st.sessionmaker() as session, session.begin():
        version = await repo.save_policy(session, ProgramPolicy(day_seconds=3), created_by="bench")
        records = [
            await session.get(JourneyRecord, fund_workflow_id(r["partner"]["id"], r["fund"].period))
            for r in rows[:50]  # every warning still ahead when its fund's first task runs, even at load 15
        ]
    expires = datetime.now(UTC) + timedelta(seconds=120)  # 40 policy days ahead
    before = await harness.db_snapshot(st)
    st.smtp.clear()
    t0 = time.perf_counter()

    async def fund(rec):
        inp = MdfFundInput.model_validate({**rec.start_input, "expires_at": expires, "policy_version": version})
        handle = await st.client.start_workflow(FUND_WORKFLOW, inp, id=rec.workflow_id, task_queue=task_queue)
        await handle.result()
        return handle

    handles = await harness.bounded(records, fund, 200)
    await harness.measure_costs(st, "mdf_fund", handles, len(handles), time.perf_counter() - t0, before)


async def approved(handle) -> None:
    """Until the journey takes the state `approved` (its `JourneyState` upsert; the baseline does
    not wait for it)."""
    from temporalio.api.enums.v1 import EventType

    def approval(event) -> bool:
        if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            return False
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        return "JourneyState" in fields and fields["JourneyState"].data == b'"approved"'

    await harness.until_event(handle, approval, "being approved")


async def run(st: Stack, n: int) -> list[Section]:
    from journeys.mdf.domain import (
        DECIDE_CLAIM,
        JOURNEY,
        RECORD_PAYMENT,
        START_ACTIVITY,
        SUBMIT_CLAIM,
        ClaimSubmission,
        Decision,
        MdfDecision,
        Payment,
        StartActivity,
    )
    from journeys.mdf.policy import ProofKind
    from worker.main import build_worker

    before = await harness.db_snapshot(st)
    partners = await harness.seed_partners(st, n + 1)
    rows = await seed_requests(st, partners)
    task_queue = f"bench-mdf-{uuid.uuid4().hex[:8]}"
    today = datetime.now(UTC).date()

    async def journey(row):
        partner = f"partner:{row['partner']['id']}"
        handle = await harness.launch(
            st.client, JOURNEY, row["request"].id, mdf_input(row), task_queue, "pending_approval"
        )
        await approved(handle)  # by the policy
        await handle.execute_update(START_ACTIVITY, StartActivity(by=partner))
        claim = ClaimSubmission(
            amount_minor=40_000,
            total_cost_minor=80_000,
            by=partner,
            proof_kinds=[ProofKind.invoice, ProofKind.attendee_list],
        )
        await handle.execute_update(SUBMIT_CLAIM, claim)
        await handle.execute_update(DECIDE_CLAIM, MdfDecision(decision=Decision.approve, by="ops:bench"))
        await handle.execute_update(
            RECORD_PAYMENT, Payment(reference="P1", amount_minor=40_000, paid_on=today, by="ops:bench")
        )
        return handle, (await handle.result())["state"]

    # the baseline just before the journeys, and again just after them (compare)
    bracket = await harness.baseline_first(st.client, harness.Shape(BUSINESS_STEPS, updates=4), n)
    st.smtp.clear()
    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        wall, done, cpu = await harness.drive("mdf", rows, journey)
        await harness.measure_costs(st, JOURNEY, [h for h, _ in done], len(rows), wall, before, ("partners", "cams"))
        emails = st.smtp.counted
        await fund_costs(st, rows, task_queue)
    failed = sum(1 for _, state in done if state != "paid")
    real = {"wall": wall, "cpu": cpu, **await harness.history_stats([h for h, _ in done[:50]])}
    return [
        await harness.compare(
            st.client,
            "mdf",
            n,
            real,
            BUSINESS_STEPS,
            notes=[f"{failed} requests not paid; {emails} emails sent"],
            first=bracket,
        )
    ]
