"""The MDF journey with the real policy (days of 24 hours) on the time-skipping test server, with
the real activities against PostgreSQL and the SMTP server: approval levels, partial approval,
return and resubmission, pre-approval expiry, the claim window, claims returned for proof, two
payments, and the fund's expiry with its warnings."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.enums import Tier
from domain.links import MDF_SALT, read_token
from domain.policy import ProgramPolicy
from journeys.mdf import ledger
from journeys.mdf.domain import (
    ClaimSubmission,
    Decision,
    LinkScope,
    MdfAnswer,
    MdfDecision,
    MdfFundInput,
    MdfState,
    Payment,
    ProofAdded,
    Resubmission,
    StartActivity,
)
from journeys.mdf.fund import MdfFundWorkflow
from journeys.mdf.models import MdfEntry, MdfRequest
from journeys.mdf.policy import ProofKind
from journeys.mdf.workflow import MdfWorkflow
from store import repo
from store.models import JourneyRecord
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import record_history
from tests.helpers.waiting import eventually
from tests.mdf.factories import make_request, mdf_input
from worker.main import build_worker

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
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == kind, cause
    return cause.message


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
        await refused(
            handle.execute_update(MdfWorkflow.decide, decision("ops:k2", approver_level=1, what=Decision.reject)),
            "Invalid",
        )  # a rejection needs a reason
        await refused(handle.execute_update(MdfWorkflow.decide, decision(f"partner:{partner.id}")), "NotApprover")
        answer = await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}", reason="good plan"))
        assert answer.state == MdfState.pending_approval and answer.level == "channel_marketing"
        await refused(handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}")), "NotApprover")
        await refused(handle.execute_update(MdfWorkflow.decide, decision("ops:low", approver_level=1)), "NotApprover")
        answer = await handle.execute_update(MdfWorkflow.decide, decision("ops:mkt", approver_level=2))
        assert answer.state == MdfState.approved and answer.approved_minor == 600_000
        await handle.execute_update(MdfWorkflow.start_activity, StartActivity(by=f"partner:{partner.id}"))
        await refused(
            handle.execute_update(
                MdfWorkflow.submit_claim,
                ClaimSubmission(
                    amount_minor=500_000, total_cost_minor=800_000, proof_kinds=ALL_PROOF, by=f"partner:{partner.id}"
                ),
            ),
            "Invalid",
        )  # 50% of 8,000.00 is 4,000.00
        await refused(
            handle.execute_update(
                MdfWorkflow.submit_claim,
                ClaimSubmission(
                    amount_minor=100_000,
                    total_cost_minor=800_000,
                    proof_kinds=[ProofKind.invoice],
                    by=f"partner:{partner.id}",
                ),
            ),
            "Invalid",
        )  # an event needs photos and the attendee list
        answer = await handle.execute_update(
            MdfWorkflow.submit_claim,
            ClaimSubmission(
                amount_minor=550_000, total_cost_minor=1_200_000, proof_kinds=ALL_PROOF, by=f"partner:{partner.id}"
            ),
        )
        assert answer.state == MdfState.claim_review and answer.level == "cam"
        await handle.execute_update(MdfWorkflow.decide_claim, decision(f"cam:{cam.id}"))
        answer = await handle.execute_update(MdfWorkflow.decide_claim, decision("ops:fin", approver_level=2))
        assert answer.state == MdfState.claim_approved
        await ts_env.sleep(timedelta(days=40))  # past the payment cut-off (the 15th)
        await refused(
            handle.execute_update(
                MdfWorkflow.record_payment,
                Payment(reference="PAY-1", amount_minor=600_000, paid_on="2027-01-20", by="ops:fin"),
            ),
            "Invalid",
        )
        first = await handle.execute_update(
            MdfWorkflow.record_payment,
            Payment(reference="PAY-1", amount_minor=300_000, paid_on="2027-01-20", by="ops:fin"),
        )
        assert first.state == MdfState.due_for_payment and first.paid_minor == 300_000
        done = await handle.execute_update(
            MdfWorkflow.record_payment,
            Payment(reference="PAY-2", amount_minor=250_000, paid_on="2027-01-27", by="ops:fin"),
        )
        assert done.state == MdfState.paid and done.paid_minor == 550_000
        result = await handle.result()
        await record_history(handle, "mdf-two-levels-paid")
    assert result.state == MdfState.paid
    assert [k for k, _ in await entries(sessionmaker, req)] == ["reservation", "release", "claim", "payment", "payment"]
    balance = await fund_of(sessionmaker, req)
    assert balance.reserved == 0 and balance.paid == 550_000 and balance.claimed == 550_000
    assert balance.available == 2_500_000 - 550_000
    templates = [t for t, _ in mails(mailbox)]
    assert templates == [
        "submitted",
        "request_approval_request",
        "request_approval_request",
        "approved",
        "approved",
        "claim_approval_request",
        "claim_approval_request",
        "claim_approved",
        "claim_approved",
        "due_for_payment",
        "paid",
        "paid",
    ], templates
    async with sessionmaker() as session:
        row = await session.get(MdfRequest, req.id)
    assert row.state == "paid" and row.paid_minor == 550_000 and row.approved_claim_minor == 550_000


# ------------------------------------------------------------------ helpers of the tests below


def body(message) -> str:
    return message.get_body(("plain",)).get_content()


async def progress(handle):
    return await handle.query(MdfWorkflow.progress)


async def request_row(sessionmaker, req) -> MdfRequest:
    async with sessionmaker() as session:
        return await session.get(MdfRequest, req.id)


async def waiting_at(handle, level: str = "cam"):
    """The workflow has read its policy and waits for a decision at `level`."""
    return await eventually(lambda: _at_level(handle, level), what=f"a decision awaited at the {level} level")


async def _at_level(handle, level: str):
    p = await progress(handle)
    return p if p.level == level else None


async def sleep_until(env, at: datetime) -> None:
    await env.sleep(at - await env.get_current_time())


# ------------------------------------------------------------------ the request: approval


async def test_partial_approval_releases_the_difference_at_once(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Gold, 6,000.00: the CAM approves 5,500.00 (still two levels), channel marketing 4,500.00 (it
    cannot approve more than the CAM did); each lower amount is released in the same step."""
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=600_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await waiting_at(handle)
        await refused(
            handle.execute_update(
                MdfWorkflow.decide, decision(f"cam:{cam.id}", Decision.approve_lower, amount_minor=600_000)
            ),
            "Invalid",
        )  # not lower
        answer = await handle.execute_update(
            MdfWorkflow.decide,
            decision(f"cam:{cam.id}", Decision.approve_lower, amount_minor=550_000, reason="a smaller booth"),
        )
        assert (answer.state, answer.level) == (MdfState.pending_approval, "channel_marketing")
        assert answer.approved_minor == 550_000 and answer.reserved_minor == 550_000
        assert await entries(sessionmaker, req) == [("reservation", 600_000), ("release", 50_000)]
        balance = await fund_of(sessionmaker, req)
        assert (balance.reserved, balance.available) == (550_000, 2_500_000 - 550_000)
        await refused(
            handle.execute_update(
                MdfWorkflow.decide, decision("ops:mkt", Decision.approve_lower, amount_minor=580_000, approver_level=2)
            ),
            "Invalid",
        )
        assert await entries(sessionmaker, req) == [("reservation", 600_000), ("release", 50_000)]
        answer = await handle.execute_update(
            MdfWorkflow.decide, decision("ops:mkt", Decision.approve_lower, amount_minor=450_000, approver_level=2)
        )
        assert answer.state == MdfState.approved and answer.approved_minor == 450_000
        assert answer.reserved_minor == 450_000
        p = await progress(handle)
        await eventually(lambda: len(mailbox.messages) == 5, what="the approval emails")
        await record_history(handle, "mdf-partial-approval")
        await handle.terminate("test over")
    assert [(d.level, d.decision, d.amount_minor) for d in p.decisions] == [
        ("cam", Decision.approve_lower, 550_000),
        ("channel_marketing", Decision.approve_lower, 450_000),
    ]
    assert await entries(sessionmaker, req) == [("reservation", 600_000), ("release", 50_000), ("release", 100_000)]
    balance = await fund_of(sessionmaker, req)
    assert (balance.reserved, balance.available) == (450_000, 2_500_000 - 450_000)
    row = await request_row(sessionmaker, req)
    assert (row.state, row.approved_minor) == ("approved", 450_000)
    assert [t for t, _ in mails(mailbox)] == [
        "submitted",
        "request_approval_request",
        "request_approval_request",
        "approved",
        "approved",
    ]


async def test_returned_resubmitted_then_rejected(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """Returned for changes; a resubmission the fund cannot cover is refused and changes nothing; the
    next one moves the reservation to its amount (and needs two levels now); a rejection releases all."""
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=400_000)
    by_partner = f"partner:{partner.id}"
    change = dict(
        title="Roadshow, two cities", planned_start=req.planned_start, planned_end=req.planned_end, by=by_partner
    )
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await waiting_at(handle)
        await refused(
            handle.execute_update(MdfWorkflow.resubmit, Resubmission(amount_minor=500_000, **change)), "NotPending"
        )  # not returned
        await refused(
            handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}", Decision.return_)), "Invalid"
        )  # a return needs a reason
        answer = await handle.execute_update(
            MdfWorkflow.decide, decision(f"cam:{cam.id}", Decision.return_, reason="add the second city")
        )
        assert answer.state == MdfState.returned
        message = await refused(
            handle.execute_update(MdfWorkflow.resubmit, Resubmission(amount_minor=2_600_000, **change)),
            "InsufficientFunds",
        )
        assert "USD 21,000.00" in message, message  # available besides the 4,000.00 it holds
        assert await entries(sessionmaker, req) == [("reservation", 400_000)]
        p = await progress(handle)
        assert (p.state, p.amount_minor, p.reserved_minor, p.level) == (MdfState.returned, 400_000, 400_000, None)
        assert (await request_row(sessionmaker, req)).title == "Spring roadshow"
        # Two resubmissions at once (a double click): one is taken, the other refused.
        both = [
            Resubmission(**{**change, "title": t, "amount_minor": 700_000})
            for t in ("Roadshow, two cities", "Roadshow, 2 cities")
        ]
        race = await asyncio.gather(
            *(handle.execute_update(MdfWorkflow.resubmit, r) for r in both), return_exceptions=True
        )
        answer = next(a for a in race if isinstance(a, MdfAnswer))
        lost = [a for a in race if not isinstance(a, MdfAnswer)]
        assert len(lost) == 1 and isinstance(lost[0], WorkflowUpdateFailedError), race
        assert isinstance(lost[0].cause, ApplicationError) and lost[0].cause.type == "NotPending", lost[0].cause
        winner = "Roadshow, two cities" if race[0] is answer else "Roadshow, 2 cities"
        assert (answer.state, answer.level, answer.reserved_minor) == (MdfState.pending_approval, "cam", 700_000)
        assert await entries(sessionmaker, req) == [("reservation", 400_000), ("reservation", 300_000)]
        await refused(
            handle.execute_update(MdfWorkflow.resubmit, Resubmission(amount_minor=500_000, **change)), "NotPending"
        )
        p = await progress(handle)
        assert p.levels == ["cam", "channel_marketing"] and p.amount_minor == 700_000
        assert (await request_row(sessionmaker, req)).title == winner
        answer = await handle.execute_update(
            MdfWorkflow.decide, decision(f"cam:{cam.id}", Decision.reject, reason="not this quarter")
        )
        assert answer.state == MdfState.rejected and answer.reserved_minor == 0
        result = await handle.result()
        await record_history(handle, "mdf-returned-rejected")
    assert result.state == MdfState.rejected
    assert await entries(sessionmaker, req) == [
        ("reservation", 400_000),
        ("reservation", 300_000),
        ("release", 700_000),
    ]
    balance = await fund_of(sessionmaker, req)
    assert (balance.reserved, balance.available) == (0, 2_500_000)
    row = await request_row(sessionmaker, req)
    assert (row.state, row.decided_by, row.decision_reason) == ("rejected", f"cam:{cam.id}", "not this quarter")
    assert mails(mailbox) == [
        ("submitted", partner.contact_email),
        ("request_approval_request", cam.email),
        ("returned", partner.contact_email),
        ("submitted", partner.contact_email),
        ("request_approval_request", cam.email),
        ("rejected", partner.contact_email),
        ("rejected", cam.email),
    ]


async def test_pre_approval_expires_when_the_activity_never_starts(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=300_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await waiting_at(handle)
        answer = await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}"))
        approved_at = await ts_env.get_current_time()
        assert answer.state == MdfState.approved
        p = await progress(handle)
        assert timedelta(days=60) - timedelta(minutes=5) <= p.start_by - approved_at <= timedelta(days=60)
        await sleep_until(ts_env, p.start_by - timedelta(hours=1))
        assert (await progress(handle)).state == MdfState.approved
        assert (await fund_of(sessionmaker, req)).reserved == 300_000
        result = await handle.result()
        await record_history(handle, "mdf-pre-approval-expired")
        assert await ts_env.get_current_time() >= p.start_by
    assert result.state == MdfState.expired
    assert await entries(sessionmaker, req) == [("reservation", 300_000), ("release", 300_000)]
    balance = await fund_of(sessionmaker, req)
    assert (balance.reserved, balance.available) == (0, 2_500_000)
    assert (await request_row(sessionmaker, req)).state == "expired"
    assert mails(mailbox)[-2:] == [("expired", partner.contact_email), ("expired", cam.email)]
    assert "pre-approval" in body(mailbox.messages[-1])


async def test_missed_claim_window_reminds_then_expires(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """Started, never claimed: reminders 14 and 3 days before the window (45 days after the end)
    closes, then expired and released."""
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=300_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await waiting_at(handle)
        await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}"))
        await refused(
            handle.execute_update(MdfWorkflow.start_activity, StartActivity(by="partner:someone-else")), "NotApprover"
        )
        answer = await handle.execute_update(MdfWorkflow.start_activity, StartActivity(by=f"partner:{partner.id}"))
        assert answer.state == MdfState.running
        p = await progress(handle)
        window_opens = datetime.combine(req.planned_end + timedelta(days=1), datetime.min.time(), UTC)
        assert p.claim_by == window_opens + timedelta(days=45)
        reminders = lambda: [to for t, to in mails(mailbox) if t == "claim_reminder"]  # noqa: E731
        for days_left in (14, 3):
            await sleep_until(ts_env, p.claim_by - timedelta(days=days_left, hours=1))
            assert len(reminders()) == (0 if days_left == 14 else 1)
            await ts_env.sleep(timedelta(hours=2))
            assert len(reminders()) == (1 if days_left == 14 else 2)
            assert f"{days_left:g} days left" in body(mailbox.messages[-1])
        assert (await progress(handle)).state == MdfState.running
        result = await handle.result()
        await record_history(handle, "mdf-claim-window-missed")
    assert result.state == MdfState.expired
    assert reminders() == [partner.contact_email, partner.contact_email]
    assert await entries(sessionmaker, req) == [("reservation", 300_000), ("release", 300_000)]
    assert (await fund_of(sessionmaker, req)).available == 2_500_000
    assert mails(mailbox)[-2:] == [("expired", partner.contact_email), ("expired", cam.email)]
    assert "no claim within the claim window" in body(mailbox.messages[-1])


async def test_claim_reminded_escalated_returned_for_proof_and_approved_in_part(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Nobody decides the claim: the CAM is reminded after the SLA (2 days), ops get the escalation
    (4 days). The CAM returns it for more proof, the partner adds it, the CAM approves 1,500.00 of
    2,000.00: the rest of the reservation is released; one payment; paid."""
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=300_000)
    by_partner = f"partner:{partner.id}"
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await waiting_at(handle)
        await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}"))
        answer = await handle.execute_update(
            MdfWorkflow.submit_claim,
            ClaimSubmission(amount_minor=200_000, total_cost_minor=500_000, proof_kinds=ALL_PROOF, by=by_partner),
        )
        assert (answer.state, answer.level, answer.claim_minor) == (MdfState.claim_review, "cam", 200_000)
        await ts_env.sleep(timedelta(days=2) - timedelta(hours=1))
        assert [t for t, _ in mails(mailbox)][-1] == "claim_approval_request"
        await ts_env.sleep(timedelta(hours=2))
        assert mails(mailbox)[-1] == ("claim_approval_reminder", cam.email)
        await ts_env.sleep(timedelta(days=2))
        assert mails(mailbox)[-1] == ("claim_approval_escalation", "ops@vendor.test")
        await refused(
            handle.execute_update(MdfWorkflow.add_proof, ProofAdded(proof_kinds=[ProofKind.photo], by=by_partner)),
            "NotPending",
        )
        answer = await handle.execute_update(
            MdfWorkflow.decide_claim,
            decision(f"cam:{cam.id}", Decision.return_, reason="the photos are missing the booth"),
        )
        assert answer.state == MdfState.claim_returned
        await refused(handle.execute_update(MdfWorkflow.decide_claim, decision(f"cam:{cam.id}")), "NotPending")
        answer = await handle.execute_update(
            MdfWorkflow.add_proof, ProofAdded(proof_kinds=[ProofKind.photo], by=by_partner)
        )
        assert (answer.state, answer.level) == (MdfState.claim_review, "cam")
        await refused(
            handle.execute_update(
                MdfWorkflow.decide_claim, decision(f"cam:{cam.id}", Decision.approve_lower, amount_minor=200_000)
            ),
            "Invalid",
        )
        answer = await handle.execute_update(
            MdfWorkflow.decide_claim,
            decision(f"cam:{cam.id}", Decision.approve_lower, amount_minor=150_000, reason="one invoice is not MDF"),
        )
        assert answer.state == MdfState.claim_approved and answer.reserved_minor == 150_000
        assert await entries(sessionmaker, req) == [("reservation", 300_000), ("release", 150_000), ("claim", 150_000)]
        p = await progress(handle)
        assert p.approved_claim_minor == 150_000 and p.claim_minor == 200_000
        await refused(
            handle.execute_update(
                MdfWorkflow.record_payment,
                Payment(reference="PAY-9", amount_minor=150_000, paid_on="2027-01-20", by=by_partner),
            ),
            "NotApprover",
        )
        done = await handle.execute_update(
            MdfWorkflow.record_payment,
            Payment(reference="PAY-9", amount_minor=150_000, paid_on="2027-01-20", by="ops:fin"),
        )
        assert done.state == MdfState.paid
        result = await handle.result()
        await record_history(handle, "mdf-claim-returned-partial")
    assert result.state == MdfState.paid and result.paid_minor == 150_000
    assert [(d.stage, d.decision) for d in p.decisions] == [
        ("request", Decision.approve),
        ("claim", Decision.return_),
        ("claim", Decision.approve_lower),
    ]
    assert [k for k, _ in await entries(sessionmaker, req)] == ["reservation", "release", "claim", "payment"]
    balance = await fund_of(sessionmaker, req)
    assert (balance.reserved, balance.paid, balance.claimed) == (0, 150_000, 150_000)
    assert balance.available == 2_500_000 - 150_000
    row = await request_row(sessionmaker, req)
    assert (row.state, row.claim_minor, row.approved_claim_minor, row.paid_minor) == ("paid", 200_000, 150_000, 150_000)
    assert mails(mailbox) == [
        ("submitted", partner.contact_email),
        ("request_approval_request", cam.email),
        ("approved", partner.contact_email),
        ("approved", cam.email),
        ("claim_approval_request", cam.email),
        ("claim_approval_reminder", cam.email),
        ("claim_approval_escalation", "ops@vendor.test"),
        ("claim_returned", partner.contact_email),
        ("claim_approval_request", cam.email),
        ("claim_approved", partner.contact_email),
        ("claim_approved", cam.email),
        ("paid", partner.contact_email),
        ("paid", cam.email),
    ]


async def test_long_tail_auto_approval_and_ops_decisions(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """Registered tier, no CAM: a webinar (pre-approved) up to 1,000.00 needs no human; an event (not
    pre-approved) and a webinar above the limit go to ops."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    auto = await make_request(sessionmaker, partner, amount_minor=80_000, activity_type="webinar")
    event = await make_request(sessionmaker, partner, amount_minor=50_000, activity_type="event")
    big = await make_request(sessionmaker, partner, amount_minor=110_000, activity_type="webinar")
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, auto, partner, task_queue)
        p = await eventually(lambda: _in_state(handle, MdfState.approved), what="the auto-approval")
        assert p.approved_minor == 80_000 and p.level is None
        assert [(d.level, d.by) for d in p.decisions] == [("auto", "system")]
        await eventually(lambda: len(mailbox.messages) == 2, what="the approval email")
        await record_history(handle, "mdf-auto-approved")
        await handle.terminate("test over")
        auto_mails = mails(mailbox)
        mailbox.clear()
        for n, req in enumerate((event, big), start=1):
            h = await start(ts_env, req, partner, task_queue)
            p = await waiting_at(h)
            assert (p.state, p.level) == (MdfState.pending_approval, "cam"), req.activity_type
            answer = await h.execute_update(MdfWorkflow.decide, decision("ops:desk", approver_level=1))
            assert answer.state == MdfState.approved and answer.approved_minor == req.amount_minor
            await eventually(lambda: len(mailbox.messages) == 3 * n, what="the approval email")  # noqa: B023
            await h.terminate("test over")
    assert auto_mails == [("submitted", partner.contact_email), ("approved", partner.contact_email)]
    assert (
        mails(mailbox)
        == [
            ("submitted", partner.contact_email),
            ("request_approval_request", "ops@vendor.test"),
            ("approved", partner.contact_email),
        ]
        * 2
    )
    row = await request_row(sessionmaker, auto)
    assert (row.state, row.approved_minor, row.decided_by) == ("approved", 80_000, "system")
    balance = await fund_of(sessionmaker, auto)
    assert (balance.reserved, balance.available) == (240_000, 10_000)


def emailed_link(mailbox, settings, template: str) -> MdfDecision | None:
    """The approve link of the latest `template` email, as the API applies it (the token's claims)."""
    sent = [m for m in mailbox.messages if m["X-CAMLights-Template"] == template]
    if not sent:
        return None
    url = re.search(r"Approve:\s+(\S+)", body(sent[-1])).group(1)
    claims = read_token(settings.link_secret, url.rsplit("/", 1)[1], salt=MDF_SALT)
    assert claims.level == 0 and claims.scoped, claims
    scope = LinkScope(level=claims.level, round=claims.round, amount_minor=claims.amount_minor)
    return MdfDecision(decision=Decision.approve, by=claims.approver, link=scope)


async def test_links_decide_their_own_level_and_round_and_levels_need_other_approvers(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Issue 29: silver (no CAM), 6,000.00: ops decide the first level, channel marketing the second.
    The first level's links carry its level, round and amount: a link of the first submission
    decides nothing after a resubmission, a reminder's link nothing once the request moved to the
    next level; an ops approver without a level decides the first level only; whoever approved the
    first level cannot approve the second (separation of duties)."""
    partner = await make_partner(sessionmaker, tier=Tier.silver)
    req = await make_request(sessionmaker, partner, amount_minor=600_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, req, partner, task_queue)
        await waiting_at(handle)
        first = await eventually(
            lambda: emailed_link(mailbox, base_settings, "request_approval_request"), what="the request email"
        )
        assert first.link == LinkScope(level=0, round=1, amount_minor=600_000)
        await handle.execute_update(
            MdfWorkflow.decide, decision("ops:desk", Decision.return_, reason="name the venue", approver_level=2)
        )
        await handle.execute_update(
            MdfWorkflow.resubmit,
            Resubmission(
                title="Spring roadshow, Lyon",
                planned_start=req.planned_start,
                planned_end=req.planned_end,
                amount_minor=600_000,
                by=f"partner:{partner.id}",
            ),
        )
        await waiting_at(handle)
        message = await refused(handle.execute_update(MdfWorkflow.decide, first), "NotPending")
        assert "submission 1" in message and "submission 2" in message, message
        policy = ProgramPolicy()
        await ts_env.sleep(policy.days(policy.mdf.approval_levels[0].sla_days) + timedelta(hours=1))
        reminder = await eventually(
            lambda: emailed_link(mailbox, base_settings, "request_approval_reminder"), what="the reminder email"
        )
        assert reminder.link == LinkScope(level=0, round=2, amount_minor=600_000)
        answer = await handle.execute_update(MdfWorkflow.decide, decision("ops:desk", approver_level=2))
        assert answer.level == "channel_marketing"
        message = await refused(handle.execute_update(MdfWorkflow.decide, reminder), "NotPending")
        assert "now at level 2" in message, message
        await refused(handle.execute_update(MdfWorkflow.decide, decision("ops:no-level")), "NotApprover")
        message = await refused(
            handle.execute_update(MdfWorkflow.decide, decision("ops:desk", approver_level=2)), "NotApprover"
        )
        assert "another approver" in message, message
        answer = await handle.execute_update(MdfWorkflow.decide, decision("ops:mkt", approver_level=2))
        assert answer.state == MdfState.approved
        assert [(d.level, d.by) for d in (await progress(handle)).decisions][-2:] == [
            ("cam", "ops:desk"),
            ("channel_marketing", "ops:mkt"),
        ]
        await record_history(handle, "mdf-link-levels")
        await handle.terminate("test over")


async def _in_state(handle, state: MdfState):
    p = await progress(handle)
    return p if p.state == state else None


# ------------------------------------------------------------------ the fund


async def test_fund_warns_then_expires_its_unreserved_balance(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """A monthly fund with 40 days of grace: warnings 30 and 7 days before it expires with what is
    still unreserved (less after a second request), then the expiry entry of exactly that."""
    policy = ProgramPolicy().model_copy(deep=True)
    policy.mdf.period, policy.mdf.expiry_grace_days = "month", 40
    async with sessionmaker() as session, session.begin():
        version = await repo.save_policy(session, policy, created_by="test")
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    async with sessionmaker() as session, session.begin():
        fund, _ = await ledger.ensure_fund(session, partner, policy, policy_version=version, task_queue=task_queue)
    workflow_id = ledger.fund_workflow_id(partner.id, fund.period)
    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, workflow_id)
    inp = MdfFundInput.model_validate(record.start_input)
    assert (inp.fund_id, inp.policy_version, inp.expires_at) == (str(fund.id), version, fund.expires_at)
    assert fund.expires_at == fund.ends_at + timedelta(days=40)
    first = await make_request(sessionmaker, partner, amount_minor=1_000_000, policy=policy)
    assert first.fund_id == fund.id
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await ts_env.client.start_workflow(MdfFundWorkflow.run, inp, id=workflow_id, task_queue=task_queue)
        warnings = lambda: [m for m in mailbox.messages if m["X-CAMLights-Template"] == "funds_expiring"]  # noqa: E731
        await sleep_until(ts_env, fund.expires_at - timedelta(days=30, hours=1))
        assert warnings() == []
        await ts_env.sleep(timedelta(hours=2))
        assert [m["To"] for m in warnings()] == [partner.contact_email]
        assert "USD 15,000.00" in body(warnings()[0]) and "30 days left" in body(warnings()[0])
        await make_request(sessionmaker, partner, amount_minor=500_000, policy=policy)
        await sleep_until(ts_env, fund.expires_at - timedelta(days=7, hours=1))
        assert len(warnings()) == 1
        await ts_env.sleep(timedelta(hours=2))
        assert len(warnings()) == 2 and "USD 10,000.00" in body(warnings()[1]) and "7 days left" in body(warnings()[1])
        await sleep_until(ts_env, fund.expires_at - timedelta(hours=1))
        assert (await handle.query(MdfFundWorkflow.progress)).expired_minor is None
        result = await handle.result()
        await record_history(handle, "mdf-fund-expired")
    assert result.expired_minor == 1_000_000 and result.warned == [30, 7]
    async with sessionmaker() as session:
        balance = await ledger.fund_balances(session, fund.id)
        rows = (
            await session.execute(
                select(MdfEntry.kind, MdfEntry.amount_minor, MdfEntry.request_id).where(
                    MdfEntry.fund_id == fund.id, MdfEntry.kind == "expiry"
                )
            )
        ).all()
        record = await session.get(JourneyRecord, workflow_id)
    assert [(k, a, r) for k, a, r in rows] == [("expiry", 1_000_000, None)]
    assert (balance.funded, balance.reserved, balance.expired, balance.available) == (
        2_500_000,
        1_500_000,
        1_000_000,
        0,
    )
    assert record.state == "expired"
    expired = [m for m in mailbox.messages if m["X-CAMLights-Template"] == "funds_expired"]
    assert [m["To"] for m in expired] == [partner.contact_email, cam.email]
    assert "USD 10,000.00" in body(expired[0])


async def test_a_claim_window_shorter_than_a_reminder_offset(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """A 10-day claim window with the default reminders (14 and 3 days before it closes): only the
    3-day reminder, at its time; none says 14 days are left when 10 are."""
    policy = ProgramPolicy().model_copy(deep=True)
    policy.mdf.claim_window_days = 10
    async with sessionmaker() as session, session.begin():
        version = await repo.save_policy(session, policy, created_by="test")
    partner = await make_partner(sessionmaker, tier=Tier.silver)
    req = await make_request(sessionmaker, partner, amount_minor=300_000)  # an event: ops decide
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        inp = mdf_input(req, partner).model_copy(update={"policy_version": version})
        handle = await ts_env.client.start_workflow(MdfWorkflow.run, inp, id=f"mdf-{req.id}", task_queue=task_queue)
        await waiting_at(handle)
        await handle.execute_update(MdfWorkflow.decide, decision("ops:desk"))
        await handle.execute_update(MdfWorkflow.start_activity, StartActivity(by=f"partner:{partner.id}"))
        p = await progress(handle)
        assert p.policy_version == version
        window_opens = datetime.combine(req.planned_end + timedelta(days=1), datetime.min.time(), UTC)
        assert p.claim_by == window_opens + timedelta(days=10)
        await sleep_until(ts_env, p.claim_by - timedelta(days=3, hours=1))
        assert [t for t, _ in mails(mailbox)].count("claim_reminder") == 0
        result = await handle.result()
    assert result.state == MdfState.expired
    reminders = [m for m in mailbox.messages if m["X-CAMLights-Template"] == "claim_reminder"]
    assert len(reminders) == 1 and "3 days left" in body(reminders[0])
