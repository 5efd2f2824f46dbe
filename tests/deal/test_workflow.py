"""The deal registration journey with the real policy (days of 24 hours) on the time-skipping
test server, with the real activities against PostgreSQL and the SMTP server."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.enums import Tier
from domain.journeys import Coverage
from journeys.deal.domain import (
    DealActivity,
    DealDecision,
    DealStage,
    DealState,
    Decision,
    ExtensionDecision,
    ExtensionRequest,
    StageChange,
)
from journeys.deal.models import Deal
from journeys.deal.workflow import DealWorkflow
from journeys.onboarding.domain import OnboardingInput
from journeys.onboarding.models import PartnerMilestone
from journeys.onboarding.workflow import OnboardingWorkflow
from tests.deal.factories import deal_input, make_deal
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import local_steps, record_history
from tests.helpers.waiting import eventually
from worker.main import build_worker


def mails(mailbox) -> list[tuple[str, str]]:
    return [(m["X-CAMLights-Template"], m["To"]) for m in mailbox.messages]


async def start(env, deal, partner, task_queue, **kw):
    return await env.client.start_workflow(
        DealWorkflow.run, deal_input(deal, partner, **kw), id=f"deal-{deal.id}", task_queue=task_queue
    )


async def refused(coro, kind: str):
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    assert err.value.cause.type == kind, err.value.cause
    return err.value.cause.message


async def test_auto_approved_then_reminded_stalled_and_expired(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Registered tier, small amount: approved by policy; the 60-day window runs out."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, amount_minor=250_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        onboarding = await ts_env.client.start_workflow(
            OnboardingWorkflow.run,
            OnboardingInput(
                partner_id=str(partner.id), partner_name=partner.name, coverage=Coverage(tier=Tier.registered)
            ),
            id=f"onboarding-{partner.id}",
            task_queue=task_queue,
        )
        handle = await start(ts_env, deal, partner, task_queue)
        result = await handle.result()
        await record_history(handle, "deal-auto-expired")
        steps = await local_steps(ts_env.client, handle)
        # Onboarding's own record of the milestone (not a query: once the deal is done the clock
        # may skip to the plan's end, and the test server answers no query of a closed workflow).
        async with sessionmaker() as session:
            first_deal = await session.get(PartnerMilestone, (partner.id, "first_deal"))
        with contextlib.suppress(RPCError):
            await onboarding.terminate("test over")
    assert result.state == DealState.expired
    # Kit generation 12: the approval and the expiry each with its email in one step; no update waits.
    assert steps.count(DealActivity.RECORD_STATE_AND_NOTIFY) == 2 and DealActivity.RECORD_STATE not in steps, steps
    assert first_deal is not None and first_deal.done_by == f"journey:deal-{deal.id}"
    # the deal's own emails (onboarding's go on: the clock may pass its plan's end meanwhile)
    deal_mails = [
        (m["X-CAMLights-Template"], m["To"])
        for m in mailbox.messages
        if m["X-CAMLights-Key"].strip().startswith(f"deal-{deal.id}:")  # a long key is folded
    ]
    assert deal_mails == [
        ("approved", partner.contact_email),
        ("stalled", "ops@vendor.test"),  # day 21 in qualification, no CAM: ops
        ("expiry_reminder", partner.contact_email),  # day 46 (14 days left)
        ("expiry_reminder", partner.contact_email),  # day 57 (3 days left)
        ("expired", partner.contact_email),
    ], deal_mails
    async with sessionmaker() as session:
        row = await session.get(Deal, deal.id)
    assert row.state == "expired" and row.decided_by == "system"
    assert (row.protected_until - row.created_at).days in (59, 60)


async def test_cam_decision_after_reminder_and_escalation(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    cam = await make_cam(sessionmaker)
    other_cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    deal = await make_deal(sessionmaker, partner)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, deal, partner, task_queue)
        await ts_env.sleep(timedelta(days=5))  # past the SLA (2 days) and the escalation (4 days)
        assert [t for t, _ in mails(mailbox)] == ["approval_request", "approval_reminder", "approval_escalation"]
        assert [to for _, to in mails(mailbox)] == [cam.email, cam.email, "ops@vendor.test"]
        message = await refused(
            handle.execute_update(
                DealWorkflow.decide, DealDecision(decision=Decision.approve, reason="mine", by=f"cam:{other_cam.id}")
            ),
            "NotApprover",
        )
        assert "only the partner's CAM or ops" in message
        result = await handle.execute_update(
            DealWorkflow.decide,
            DealDecision(decision=Decision.approve, reason="customer confirmed", by=f"cam:{cam.id}"),
        )
        assert result.state == DealState.approved and result.decided_by == f"cam:{cam.id}"
        await refused(
            handle.execute_update(
                DealWorkflow.decide,
                DealDecision(decision=Decision.reject, reason="changed my mind", by=f"cam:{cam.id}"),
            ),
            "NotPending",
        )
        # Gold: the extension needs the CAM.
        ext = await handle.execute_update(
            DealWorkflow.request_extension, ExtensionRequest(days=20, by=f"partner:{partner.id}")
        )
        assert ext.status == "awaiting_cam"
        await refused(
            handle.execute_update(DealWorkflow.request_extension, ExtensionRequest(days=5, by=f"partner:{partner.id}")),
            "NotPending",
        )
        granted = await handle.execute_update(
            DealWorkflow.decide_extension, ExtensionDecision(decision=Decision.approve, by=f"cam:{cam.id}")
        )
        assert granted.status == "granted" and granted.protected_until == result.protected_until + timedelta(days=20)
        await ts_env.sleep(timedelta(days=1))
        await handle.signal(
            DealWorkflow.change_stage, StageChange(stage=DealStage.proposal, by=f"partner:{partner.id}")
        )
        await handle.signal(
            DealWorkflow.change_stage, StageChange(stage=DealStage.closed_won, by=f"partner:{partner.id}")
        )
        final = await handle.result()
        await record_history(handle, "deal-cam-won")
        steps = await local_steps(ts_env.client, handle)
    # The CAM's decision is answered once recorded, so it and its email stay two steps while the
    # update waits; the win, with no update waiting, is one (kit generation 12).
    assert steps.count(DealActivity.RECORD_STATE_AND_NOTIFY) == 1, steps
    assert DealActivity.RECORD_STATE in steps[: steps.index(DealActivity.RECORD_STATE_AND_NOTIFY)], steps
    assert final.state == DealState.won and final.stage == DealStage.closed_won
    later = mails(mailbox)[3:]
    assert later == [
        ("approved", partner.contact_email),
        ("approved", cam.email),
        ("extension_request", cam.email),
        ("extension_granted", partner.contact_email),
        ("won", partner.contact_email),
        ("won", cam.email),
    ], later
    async with sessionmaker() as session:
        row = await session.get(Deal, deal.id)
    assert (row.state, row.stage, row.decided_by, row.decision_reason, row.extensions_used) == (
        "won",
        "closed_won",
        f"cam:{cam.id}",
        "customer confirmed",
        1,
    )


async def test_rejected_with_reason(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.platinum, cam=cam)
    deal = await make_deal(sessionmaker, partner)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, deal, partner, task_queue)
        await handle.execute_update(
            DealWorkflow.decide,
            DealDecision(decision=Decision.reject, reason="direct account, not open to partners", by="ops:k1"),
        )
        assert (await handle.result()).state == DealState.rejected
    rejected = [m for m in mailbox.messages if m["X-CAMLights-Template"] == "rejected"]
    assert [m["To"] for m in rejected] == [partner.contact_email]
    assert "direct account, not open to partners" in rejected[0].get_body(("plain",)).get_content()


async def test_extensions_within_and_beyond_the_limits_then_lost(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Registered tier: extensions are granted at once, up to the policy's count and length."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, amount_minor=100_000)
    by = f"partner:{partner.id}"
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, deal, partner, task_queue)
        await ts_env.sleep(timedelta(hours=1))
        first = await handle.execute_update(DealWorkflow.request_extension, ExtensionRequest(days=30, by=by))
        assert first.status == "granted" and first.extensions_used == 1
        message = await refused(
            handle.execute_update(DealWorkflow.request_extension, ExtensionRequest(days=31, by=by)), "LimitReached"
        )
        assert "at most 30 days" in message
        await handle.execute_update(DealWorkflow.request_extension, ExtensionRequest(days=10, by=by))
        message = await refused(
            handle.execute_update(DealWorkflow.request_extension, ExtensionRequest(days=1, by=by)), "LimitReached"
        )
        assert "allows 2 extension(s)" in message
        progress = await handle.query(DealWorkflow.progress)
        assert progress.extensions_used == 2
        window = progress.protected_until - progress.submitted_at
        assert abs(window - timedelta(days=100)) < timedelta(minutes=1), window  # 60 + 30 + 10
        await handle.signal(DealWorkflow.change_stage, StageChange(stage=DealStage.closed_lost, by=by))
        assert (await handle.result()).state == DealState.lost
    assert [t for t, _ in mails(mailbox)] == ["approved", "extension_granted", "extension_granted", "lost"]


async def test_stall_alert_goes_to_the_cam(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    deal = await make_deal(sessionmaker, partner)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, deal, partner, task_queue)
        await handle.execute_update(
            DealWorkflow.decide, DealDecision(decision=Decision.approve, reason="ok", by=f"cam:{cam.id}")
        )
        await ts_env.sleep(timedelta(days=10))
        await handle.signal(
            DealWorkflow.change_stage, StageChange(stage=DealStage.discovery, by=f"partner:{partner.id}")
        )
        await ts_env.sleep(timedelta(days=22))  # 22 days in discovery > 21
        progress = await handle.query(DealWorkflow.progress)
        assert progress.stalled and progress.stage == DealStage.discovery
        await handle.signal(DealWorkflow.change_stage, StageChange(stage=DealStage.closed_won, by=f"cam:{cam.id}"))
        await handle.result()
    assert ("stalled", cam.email) in mails(mailbox)
    assert [t for t, _ in mails(mailbox)].count("stalled") == 1


async def test_stage_changes_only_from_the_partner_its_cam_or_ops(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Actors are compared by equality: another partner, a look-alike id or a malformed actor
    changes nothing; the partner, its CAM and ops do."""
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    deal = await make_deal(sessionmaker, partner)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, deal, partner, task_queue)
        await handle.execute_update(
            DealWorkflow.decide, DealDecision(decision=Decision.approve, reason="ok", by=f"cam:{cam.id}")
        )
        for stranger in (
            "x",
            f"partner:{partner.id}x",
            "partner:" + str(partner.id)[:-1],
            "cam:someone-else",
            "system",
        ):
            await handle.signal(DealWorkflow.change_stage, StageChange(stage=DealStage.closed_lost, by=stranger))
        await ts_env.sleep(timedelta(days=1))
        progress = await handle.query(DealWorkflow.progress)
        assert (progress.state, progress.stage) == (DealState.approved, DealStage.qualification)
        for actor, stage in [
            (f"partner:{partner.id}", DealStage.discovery),
            (f"cam:{cam.id}", DealStage.proposal),
            ("ops:key-1", DealStage.negotiation),
        ]:
            await handle.signal(DealWorkflow.change_stage, StageChange(stage=stage, by=actor))
            await ts_env.sleep(timedelta(hours=1))
            assert (await handle.query(DealWorkflow.progress)).stage == stage, actor
        await handle.signal(DealWorkflow.change_stage, StageChange(stage=DealStage.closed_won, by="ops:key-1"))
        assert (await handle.result()).state == DealState.won


async def test_a_permanent_failure_waits_for_ops_then_resumes(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """No poison pill: a step that fails for good (here the deal row is gone) does not fail or
    retry forever. The journey shows `needs_attention`, ops are told, queries still answer;
    once ops fix the cause and resume it, it runs the step again and carries on."""
    from sqlalchemy import delete, select

    from domain.journeys import RESUME, Resume
    from store.models import AuditEvent, JourneyRecord

    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, amount_minor=100_000)  # inside auto-approval
    wid = f"deal-{deal.id}"
    async with sessionmaker() as session, session.begin():
        session.add(JourneyRecord(workflow_id=wid, partner_id=partner.id, journey="deal", state="pending_approval"))
        await session.execute(delete(Deal).where(Deal.id == deal.id))  # the cause: the row is gone
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, deal, partner, task_queue)

        record = await eventually(lambda: _needs(sessionmaker, wid), what="needs_attention recorded")
        assert record.state == "needs_attention" and "DealNotFound" in record.attention["error"]
        # The decision and its email are one step (kit generation 12): that step waits for ops.
        assert record.attention["activity"] == "deal.record_state_and_notify"
        assert (await handle.describe()).status.name == "RUNNING"  # not failed
        progress = await handle.query(DealWorkflow.progress)  # still answers
        assert progress.state == DealState.approved  # the decision it could not record
        await eventually(lambda: ("needs_attention", "ops@vendor.test") in mails(mailbox), what="ops alerted")
        # Ops put the row back and resume the journey: the step runs again and the deal carries on.
        async with sessionmaker() as session, session.begin():
            session.add(
                Deal(
                    **{
                        c: getattr(deal, c)
                        for c in (
                            "id",
                            "partner_id",
                            "customer_name",
                            "customer_domain",
                            "customer_key",
                            "customer_name_key",
                            "product_category",
                            "amount_minor",
                            "currency",
                            "expected_close_date",
                            "stage",
                            "state",
                            "extensions_used",
                            "created_by",
                        )
                    }
                )
            )
        await handle.signal(RESUME, Resume(by="ops:key-1"))
        row = await eventually(lambda: _deal_state(sessionmaker, deal.id, "approved"), what="decision recorded")
        assert row.decided_by == "system"
        async with sessionmaker() as session:
            record = await session.get(JourneyRecord, wid)
            actions = (
                await session.scalars(select(AuditEvent.action).where(AuditEvent.partner_id == partner.id))
            ).all()
        assert record.attention is None and record.state == "approved"
        assert "journey.needs_attention" in actions and "journey.resumed" in actions
        await handle.terminate("test over")


async def _needs(sessionmaker, wid):
    from store.models import JourneyRecord

    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, wid)
        return record if record is not None and record.attention else None


async def _deal_state(sessionmaker, deal_id, state):
    async with sessionmaker() as session:
        row = await session.get(Deal, deal_id)
        return row if row is not None and row.state == state else None
