"""The MDF journey with the real policy (days of 24 hours) on the time-skipping test server, with
the real activities against PostgreSQL and the SMTP server: approval levels, partial approval,
return and resubmission, pre-approval expiry, the claim window, claims returned for proof, two
payments, and the fund's expiry with its warnings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Tier
from domain.mdf import (
    ClaimSubmission,
    Decision,
    MdfDecision,
    MdfState,
    Payment,
    ProofAdded,
    Resubmission,
    StartActivity,
)
from domain.policy import ProofKind
from store import ledger
from store.models.mdf import MdfEntry, MdfRequest
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import record_history
from tests.mdf.factories import make_request, mdf_input
from worker.main import build_worker
from workflows.mdf import MdfWorkflow

ALL_PROOF = [ProofKind.invoice, ProofKind.photo, ProofKind.attendee_list]


def mails(mailbox) -> list[tuple[str, str]]:
    return [(m["X-CAMLights-Template"], m["To"]) for m in mailbox.messages]


async def start(env, req, partner, task_queue):
    return await env.client.start_workflow(
        MdfWorkflow.run, mdf_input(req, partner), id=f"mdf-{req.id}", task_queue=task_queue
    )


async def refused(coro, kind: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    assert err.value.cause.type == kind, err.value.cause
    return err.value.cause.message


async def fund_of(sessionmaker, req):
    async with sessionmaker() as session:
        return await ledger.fund_balances(session, req.fund_id)


async def entries(sessionmaker, req) -> list[tuple[str, int]]:
    from sqlalchemy import select

    async with sessionmaker() as session:
        rows = await session.execute(
            select(MdfEntry.kind, MdfEntry.amount_minor).where(MdfEntry.request_id == req.id).order_by(MdfEntry.id)
        )
        return [(k, a) for k, a in rows.all()]


def decision(by, what=Decision.approve, **kw):
    return MdfDecision(decision=what, by=by, **kw)


async def test_two_levels_claim_and_two_payments(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """Gold, 6,000.00: the CAM then channel marketing (an ops key of level 2); a finance-level key is
    not needed. The claim passes both levels; two payments; the reservation is used exactly."""
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=600_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await ts_env.sleep(timedelta(hours=1))
        await refused(handle.execute_update(MdfWorkflow.decide, decision("ops:k2", approver_level=1, what=Decision.reject)),
                      "Invalid")  # a rejection needs a reason  # fmt: skip
        await refused(handle.execute_update(MdfWorkflow.decide, decision(f"partner:{partner.id}")), "NotApprover")
        answer = await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}", reason="good plan"))
        assert answer.state == MdfState.pending_approval and answer.level == "channel_marketing"
        await refused(handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}")), "NotApprover")
        await refused(handle.execute_update(MdfWorkflow.decide, decision("ops:low", approver_level=1)), "NotApprover")
        answer = await handle.execute_update(MdfWorkflow.decide, decision("ops:mkt", approver_level=2))
        assert answer.state == MdfState.approved and answer.approved_minor == 600_000
        await handle.execute_update(MdfWorkflow.start_activity, StartActivity(by=f"partner:{partner.id}"))
        await refused(
            handle.execute_update(MdfWorkflow.submit_claim, ClaimSubmission(
                amount_minor=500_000, total_cost_minor=800_000, proof_kinds=ALL_PROOF, by=f"partner:{partner.id}")),
            "Invalid",
        )  # 50% of 8,000.00 is 4,000.00  # fmt: skip
        await refused(
            handle.execute_update(MdfWorkflow.submit_claim, ClaimSubmission(
                amount_minor=100_000, total_cost_minor=800_000, proof_kinds=[ProofKind.invoice],
                by=f"partner:{partner.id}")),
            "Invalid",
        )  # an event needs photos and the attendee list  # fmt: skip
        answer = await handle.execute_update(MdfWorkflow.submit_claim, ClaimSubmission(
            amount_minor=550_000, total_cost_minor=1_200_000, proof_kinds=ALL_PROOF, by=f"partner:{partner.id}"))  # fmt: skip
        assert answer.state == MdfState.claim_review and answer.level == "cam"
        await handle.execute_update(MdfWorkflow.decide_claim, decision(f"cam:{cam.id}"))
        answer = await handle.execute_update(MdfWorkflow.decide_claim, decision("ops:fin"))
        assert answer.state == MdfState.claim_approved
        await ts_env.sleep(timedelta(days=40))  # past the payment cut-off (the 15th)
        await refused(handle.execute_update(MdfWorkflow.record_payment, Payment(
            reference="PAY-1", amount_minor=600_000, paid_on="2027-01-20", by="ops:fin")), "Invalid")  # fmt: skip
        first = await handle.execute_update(MdfWorkflow.record_payment, Payment(
            reference="PAY-1", amount_minor=300_000, paid_on="2027-01-20", by="ops:fin"))  # fmt: skip
        assert first.state == MdfState.due_for_payment and first.paid_minor == 300_000
        done = await handle.execute_update(MdfWorkflow.record_payment, Payment(
            reference="PAY-2", amount_minor=250_000, paid_on="2027-01-27", by="ops:fin"))  # fmt: skip
        assert done.state == MdfState.paid and done.paid_minor == 550_000
        result = await handle.result()
        await record_history(handle, "mdf-two-levels-paid")
    assert result.state == MdfState.paid
    assert [k for k, _ in await entries(sessionmaker, req)] == [
        "reservation", "release", "claim", "payment", "payment"
    ]  # fmt: skip
    balance = await fund_of(sessionmaker, req)
    assert balance.reserved == 0 and balance.paid == 550_000 and balance.claimed == 550_000
    assert balance.available == 2_500_000 - 550_000
    templates = [t for t, _ in mails(mailbox)]
    assert templates == [
        "submitted", "request_approval_request", "request_approval_request", "approved", "approved",
        "claim_approval_request", "claim_approval_request", "claim_approved", "claim_approved", "due_for_payment",
        "paid", "paid",
    ], templates  # fmt: skip
    async with sessionmaker() as session:
        row = await session.get(MdfRequest, req.id)
    assert row.state == "paid" and row.paid_minor == 550_000 and row.approved_claim_minor == 550_000

