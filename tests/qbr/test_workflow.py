"""A partner's QBR with the real policy on the time-skipping test server, with the real
activities against PostgreSQL and the SMTP server: a gold partner's whole quarter, a
registered partner's automated scorecard, and a demotion recovered during its remediation."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.enums import Tier
from domain.journeys import SA_TIER, Coverage
from domain.policy import ProgramPolicy
from journeys.onboarding.domain import OnboardingInput
from journeys.onboarding.workflow import OnboardingWorkflow
from journeys.qbr.activities import QbrActivities
from journeys.qbr.cycle import QbrCycleWorkflow
from journeys.qbr.domain import (
    ActionDone,
    ActionEdit,
    ActionItemIn,
    CycleInput,
    CycleResult,
    MeetingProposal,
    Notes,
    Owner,
    QbrInput,
    QbrState,
    ReviewState,
    StartQbrsInput,
    TierDecision,
    cycle_id,
    qbr_id,
)
from journeys.qbr.models import Qbr, QbrActionItem, QbrScorecard, QbrTierReview
from journeys.qbr.periods import period_bounds, period_of, shift
from journeys.qbr.workflow import QbrWorkflow
from store.models import Partner
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import chain_histories, record_history, run_chain
from tests.helpers.waiting import eventually
from tests.qbr.factories import make_cert, make_deal, qbr_input, save_policy, set_target
from worker.main import build_worker

QBR_TEMPLATES = {
    "schedule_request",
    "schedule_overdue",
    "invite",
    "pre_read",
    "notes_reminder",
    "action_reminder",
    "action_escalation",
    "scorecard",
    "tier_review",
    "tier_changed",
    "remediation",
    "recovered",
}


def mails(mailbox) -> list[tuple[str, str]]:
    return [
        (m["X-CAMLights-Template"], m["To"]) for m in mailbox.messages if m["X-CAMLights-Template"] in QBR_TEMPLATES
    ]


def invites(mailbox, to: str) -> list[Calendar]:
    out = []
    for m in mailbox.messages:
        if m["X-CAMLights-Template"] == "invite" and m["To"] == to:
            (part,) = [p for p in m.iter_attachments() if p.get_filename() == "qbr.ics"]
            body = part.get_content()
            out.append(Calendar.from_ical(body if isinstance(body, str | bytes) else str(body)))
    return out


def body(mailbox, template: str, to: str) -> str:
    (m,) = [m for m in mailbox.messages if m["X-CAMLights-Template"] == template and m["To"] == to]
    return m.get_body(preferencelist=("plain",)).get_content()


async def row(sessionmaker, model, *key):
    async with sessionmaker() as session:
        return await session.get(model, key)


async def state_is(handle, state: QbrState):
    progress = await handle.query(QbrWorkflow.progress)
    return progress if progress.state == state else None


async def test_a_gold_partners_whole_quarter(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """Scorecard, invite, reschedule (same UID), pre-read 48 h before, notes and action items,
    a reminder, escalations, the promotion recommended, approved by the CAM, the tier changed
    and the onboarding journey's search attribute following."""
    policy = ProgramPolicy().model_copy(deep=True)
    policy.qbr.tiers[Tier.gold].promote_min_registrations = 1
    policy.qbr.tiers[Tier.gold].certifications_required = 1
    policy.qbr.tiers[Tier.platinum].certifications_required = 1
    await save_policy(sessionmaker, policy)
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    now = (await ts_env.get_current_time()).replace(microsecond=0)  # an invite holds whole seconds
    period = shift(period_of(now, "UTC"), -1)
    start, end = period_bounds(period, "UTC")
    mid = start + (end - start) / 2
    await set_target(sessionmaker, partner, period, 20_000_000)
    await make_deal(sessionmaker, partner, amount_minor=40_000_000, state="won", at=mid)  # 2x the target
    await make_deal(sessionmaker, partner, amount_minor=25_000_000, state="approved", at=mid)  # open pipeline
    await make_cert(sessionmaker, partner, at=mid)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        onboarding = await ts_env.client.start_workflow(
            OnboardingWorkflow.run,
            OnboardingInput(
                partner_id=str(partner.id),
                partner_name=partner.name,
                coverage=Coverage(tier=Tier.gold, cam_id=str(cam.id)),
            ),
            id=f"onboarding-{partner.id}",
            task_queue=task_queue,
        )
        handle = await ts_env.client.start_workflow(
            QbrWorkflow.run, qbr_input(partner, period), id=qbr_id(str(partner.id), period), task_queue=task_queue
        )
        progress = await eventually(lambda: state_is(handle, QbrState.scheduling), what="scheduling")
        # (30 revenue + 10 pipeline + 10 win rate + 15 certifications + 10 responsiveness) * 100
        # + 10 registrations * 50 (2 of 4) + 5 onboarding * 50, over 90 (MDF absent)
        assert progress.band == "healthy" and progress.score == 91.7
        await eventually(lambda: ("tier_review", cam.email) in mails(mailbox), what="tier review to the CAM")
        assert sorted(mails(mailbox)) == sorted(
            [("schedule_request", cam.email), ("schedule_request", partner.contact_email), ("tier_review", cam.email)]
        )
        assert "promote to platinum" in body(mailbox, "tier_review", cam.email)

        # The CAM approves the promotion: the tier changes through the coverage-change path.
        outcome = await handle.execute_update(
            QbrWorkflow.decide_tier, TierDecision(approve=True, reason="", by=f"cam:{cam.id}")
        )
        assert (outcome.state, outcome.to_tier) == (ReviewState.changed, Tier.platinum)
        assert (await row(sessionmaker, Partner, partner.id)).tier == "platinum"

        async def onboarding_tier():
            desc = await onboarding.describe()
            return desc.typed_search_attributes.get(SA_TIER) == "platinum"

        await eventually(onboarding_tier, what="the onboarding journey's Tier search attribute")
        assert (await onboarding.query(OnboardingWorkflow.progress)).tier == Tier.platinum

        # The meeting: proposed, then rescheduled; the invite keeps its UID, the sequence grows.
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                QbrWorkflow.schedule, MeetingProposal(starts_at=now - timedelta(hours=1), by=f"cam:{cam.id}")
            )
        assert err.value.cause.type == "TooShort"
        first = await handle.execute_update(
            QbrWorkflow.schedule, MeetingProposal(starts_at=now + timedelta(days=10), by=f"cam:{cam.id}")
        )
        meeting = await handle.execute_update(
            QbrWorkflow.schedule,
            MeetingProposal(starts_at=now + timedelta(days=12), duration_minutes=90, by=f"partner:{partner.id}"),
        )
        assert (first.uid, first.sequence, meeting.uid, meeting.sequence) == (first.uid, 0, first.uid, 1)
        cals = invites(mailbox, partner.contact_email)
        events = [next(iter(c.walk("VEVENT"))) for c in cals]
        assert [str(e["UID"]) for e in events] == [first.uid, first.uid]
        assert [int(e["SEQUENCE"]) for e in events] == [0, 1]
        assert events[1].decoded("DTSTART") == now + timedelta(days=12)
        assert len(invites(mailbox, cam.email)) == 2

        # The pre-read goes out 48 h before the meeting (day 10), not before.
        await ts_env.sleep(timedelta(days=9, hours=23))
        assert ("pre_read", cam.email) not in mails(mailbox)
        await ts_env.sleep(timedelta(hours=2))
        await eventually(lambda: ("pre_read", partner.contact_email) in mails(mailbox), what="pre-read")
        text = body(mailbox, "pre_read", cam.email)
        assert "Score 91.7 (healthy)" in text and "USD 250,000.00 (approved" in text
        html = next(m for m in mailbox.messages if m["X-CAMLights-Template"] == "pre_read")
        assert "<svg" in html.get_body(preferencelist=("html",)).get_content()

        # After the meeting: notes and two action items; the CAM's is done at once.
        await ts_env.sleep(timedelta(days=2))
        due = (now + timedelta(days=20)).date()
        result = await handle.execute_update(
            QbrWorkflow.record_notes,
            Notes(
                notes="Good quarter; expand into security.",
                by=f"cam:{cam.id}",
                action_items=[
                    ActionItemIn(title="Send the security pipeline", owner=Owner.partner, due=due),
                    ActionItemIn(title="Arrange a security enablement", owner=Owner.cam, due=due),
                    ActionItemIn(title="Share the forecast", owner=Owner.partner, due=due),
                ],
            ),
        )
        assert [i.id for i in result.action_items] == [1, 2, 3]
        await handle.execute_update(QbrWorkflow.complete_action, ActionDone(item_id=2, by=f"cam:{cam.id}"))
        # Item 3 is dropped, item 1 renamed (its reminders carry the new title); item 2 is closed.
        dropped = await handle.execute_update(QbrWorkflow.edit_action, ActionEdit(item_id=3, cancel=True, by="ops:x"))
        assert dropped.cancelled_at is not None and not dropped.open
        renamed = await handle.execute_update(
            QbrWorkflow.edit_action, ActionEdit(item_id=1, title="Send the security pipeline (Q3)", by=f"cam:{cam.id}")
        )
        assert (renamed.title, renamed.revision, renamed.due) == ("Send the security pipeline (Q3)", 1, due)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(QbrWorkflow.edit_action, ActionEdit(item_id=2, title="x", by="ops:x"))
        assert err.value.cause.type == "NotPending"
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(QbrWorkflow.complete_action, ActionDone(item_id=9, by=f"cam:{cam.id}"))
        assert err.value.cause.type == "UnknownKey"

        # The partner's item: a reminder before it is due, then escalations to the CAM and ops.
        before = len(mails(mailbox))
        result_progress = await handle.result()  # time skips to the end of the chase
        chased = mails(mailbox)[before:]
        assert chased == [
            ("action_reminder", partner.contact_email),
            ("action_escalation", cam.email),
            ("action_escalation", partner.contact_email),
            ("action_escalation", "ops@vendor.test"),
            ("action_escalation", partner.contact_email),
        ], chased
        assert "Send the security pipeline (Q3)" in body(mailbox, "action_reminder", partner.contact_email)
        assert result_progress.state == QbrState.done
        await record_history(handle, "qbr-gold-quarter")
        await onboarding.terminate("test over")
    items = {n: await row(sessionmaker, QbrActionItem, partner.id, period, n) for n in (1, 2, 3)}
    assert items[2].done_by == f"cam:{cam.id}" and items[1].done_at is None
    assert items[1].title == "Send the security pipeline (Q3)" and items[3].cancelled_at is not None
    review = await row(sessionmaker, QbrTierReview, partner.id, period)
    assert (review.state, review.decided, review.to_tier, review.from_tier) == (
        "changed",
        "promote",
        "platinum",
        "gold",
    )
    qbr = await row(sessionmaker, Qbr, partner.id, period)
    assert (qbr.state, qbr.meeting_sequence, qbr.notes) == ("done", 1, "Good quarter; expand into security.")


async def test_a_registered_partner_gets_its_automated_scorecard(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    now = await ts_env.get_current_time()
    period = shift(period_of(now, "UTC"), -1)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await ts_env.client.start_workflow(
            QbrWorkflow.run, qbr_input(partner, period), id=qbr_id(str(partner.id), period), task_queue=task_queue
        )
        progress = await handle.result()
        await record_history(handle, "qbr-registered-scorecard")
    assert (progress.state, progress.mode, progress.meeting) == (QbrState.scorecard_sent, "scorecard", None)
    assert progress.review is not None and progress.review.state == ReviewState.held
    assert mails(mailbox) == [("scorecard", partner.contact_email)]
    text = body(mailbox, "scorecard", partner.contact_email)
    assert "Register your next deal" in text and "mdf: not scored" in text
    snap = await row(sessionmaker, QbrScorecard, partner.id, period)
    assert snap.score == progress.score and snap.inputs["target_minor"] == 1_000_000  # the tier's default target
    assert snap.inputs["mdf"] is None


async def test_a_demotion_recovered_during_its_remediation(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    now = await ts_env.get_current_time()
    period = shift(period_of(now, "UTC"), -1)
    for track in ("Network Associate", "Security Associate"):
        await make_cert(sessionmaker, partner, at=now, track=track)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await ts_env.client.start_workflow(
            QbrWorkflow.run, qbr_input(partner, period), id=qbr_id(str(partner.id), period), task_queue=task_queue
        )
        await eventually(lambda: ("tier_review", cam.email) in mails(mailbox), what="tier review")
        assert "demote to silver" in body(mailbox, "tier_review", cam.email)
        with pytest.raises(WorkflowUpdateFailedError) as err:  # an override needs a reason
            await handle.execute_update(QbrWorkflow.decide_tier, TierDecision(approve=False, by=f"cam:{cam.id}"))
        assert err.value.cause.type == "TooShort"
        with pytest.raises(WorkflowUpdateFailedError) as err:  # the CAM may not name another CAM (issue 29)
            await handle.execute_update(
                QbrWorkflow.decide_tier,
                TierDecision(approve=True, cam_id=str(uuid.uuid4()), by=f"cam:{cam.id}"),
            )
        assert err.value.cause.type == "NotApprover"
        outcome = await handle.execute_update(QbrWorkflow.decide_tier, TierDecision(approve=True, by=f"cam:{cam.id}"))
        assert outcome.state == ReviewState.remediation
        assert outcome.remediation_ends is not None
        assert abs(outcome.remediation_ends - (now + timedelta(days=90))) < timedelta(minutes=1)
        await eventually(lambda: ("remediation", cam.email) in mails(mailbox), what="the remediation letter")
        letter = body(mailbox, "remediation", partner.contact_email)
        assert "revenue 0% of target, below 40%" in letter and "moves to silver" in letter
        # The partner wins a deal worth the (pro-rated) target during the remediation period.
        await ts_env.sleep(timedelta(days=30))
        await make_deal(sessionmaker, partner, amount_minor=20_000_000, state="won", at=await ts_env.get_current_time())
        progress = await handle.result()
        await record_history(handle, "qbr-demotion-recovered")
    assert progress.review is not None and progress.review.state == ReviewState.recovered
    # Nobody scheduled the meeting: the CAM was alerted at the deadline, and the QBR closed as missed.
    assert ("schedule_overdue", cam.email) in mails(mailbox) and progress.state == QbrState.missed
    assert (await row(sessionmaker, Partner, partner.id)).tier == "gold"
    review = await row(sessionmaker, QbrTierReview, partner.id, period)
    assert (review.state, review.decided) == ("recovered", "demote")
    assert review.remediation_ends == outcome.remediation_ends
    assert sorted(to for t, to in mails(mailbox) if t == "recovered") == sorted([partner.contact_email, cam.email])
    assert not [t for t, _ in mails(mailbox) if t == "tier_changed"]


async def test_a_cycle_pages_with_a_window_and_never_starts_a_qbr_twice(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    policy = ProgramPolicy().model_copy(deep=True)
    policy.qbr.cycle_window, policy.qbr.cycle_page_size = 2, 2
    await save_policy(sessionmaker, policy)
    partners = [await make_partner(sessionmaker, tier=Tier.registered, name=f"Long Tail {i}") for i in range(5)]
    period = shift(period_of(await ts_env.get_current_time(), "UTC"), -1)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        started = await ts_env.client.start_workflow(
            QbrCycleWorkflow.run, CycleInput(period=period), id=cycle_id(period), task_queue=task_queue
        )
        result = await ts_env.client.get_workflow_handle(started.id, result_type=CycleResult).result()
        assert (result.started, result.existing) == (5, 0)
        sizes = await run_chain(ts_env.client, started.id, started.result_run_id)
        assert len(sizes) == 3, sizes  # pages of 2, 2 and 1 partners
        first = ts_env.client.get_workflow_handle(started.id, run_id=started.result_run_id)
        progress = await ts_env.client.get_workflow_handle(started.id).query(QbrCycleWorkflow.progress)
        assert (progress.started, progress.prepared, progress.in_flight, progress.max_in_flight) == (5, 5, 0, 2)
        await record_history(first, "qbr-cycle-pages")
        # The QBRs are workflows of their own, started by an activity as many as the window has
        # room for: no run of the cycle has a child, and no QBR a parent.
        kinds = [
            e.event_type
            for run in await chain_histories(ts_env.client, started.id, started.result_run_id)
            for e in run.events
        ]
        assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in kinds
        starts = [e for e in kinds if e == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        assert len(starts) >= 3 + 3, starts  # per page a policy read and a listing; at least one start per page
        for p in partners:
            desc = await ts_env.client.get_workflow_handle(qbr_id(str(p.id), period)).describe()
            assert desc.raw_description.workflow_execution_info.HasField("parent_execution") is False
        # The same period again (a second cycle run): every partner's QBR exists, nothing is started.
        again = await ts_env.client.execute_workflow(
            QbrCycleWorkflow.run,
            CycleInput(period=period),
            id=f"{cycle_id(period)}-again",
            task_queue=task_queue,
            result_type=CycleResult,
        )
    assert (again.started, again.existing) == (0, 5)
    assert sorted(to for t, to in mails(mailbox)) == sorted(p.contact_email for p in partners)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(QbrScorecard)) == 5


async def test_starting_a_cycles_qbrs_is_idempotent_across_retries(ts_env, sessionmaker, task_queue):
    """A retry of the cycle's start activity after its starts went through reports them started
    (each run's memo names the activity that started it), never a second run; another activity
    (a second cycle for the period) finds them existing."""
    partners = [await make_partner(sessionmaker, tier=Tier.registered, name=f"Retry {i}") for i in range(2)]
    period = shift(period_of(await ts_env.get_current_time(), "UTC"), -1)
    inp = StartQbrsInput(
        qbrs=[
            QbrInput(partner_id=str(p.id), partner_name=p.name, coverage=Coverage(tier=p.tier), period=period)
            for p in partners
        ]
    )
    env = ActivityEnvironment(ts_env.client)
    info = dataclasses.replace(env.info, task_queue=task_queue, workflow_id=cycle_id(period), activity_id="7")
    activities = QbrActivities(sessionmaker, ops_email="ops@vendor.test")
    try:
        env.info = info
        assert (await env.run(activities.start_qbrs, inp)).started == [True, True]
        assert (await env.run(activities.start_qbrs, inp)).started == [True, True]  # a retry: the same activity
        env.info = dataclasses.replace(info, activity_id="8")
        assert (await env.run(activities.start_qbrs, inp)).started == [False, False]  # another one
        env.info = dataclasses.replace(info, workflow_run_id=str(uuid.uuid4()))
        assert (await env.run(activities.start_qbrs, inp)).started == [False, False]  # another cycle run
        with pytest.raises(ApplicationError, match="names no period"):  # the scheduled run always names one
            await env.run(activities.start_cycle, CycleInput())
    finally:
        for p in partners:  # no worker polls this queue: nothing is left pending for later tests
            await ts_env.client.get_workflow_handle(qbr_id(str(p.id), period)).terminate("test over")


async def test_the_scorecard_reads_the_partners_mdf_ledger(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """With an MDF fund for the period, the MDF metric is scored from the ledger (claimed of funded,
    revenue of won deals linked to its activities) and the partner is told what is left to request."""
    from journeys.mdf import ledger
    from journeys.mdf.models import MdfEntry
    from tests.deal.factories import make_deal
    from tests.mdf.factories import make_request

    partner = await make_partner(sessionmaker, tier=Tier.registered)
    now = await ts_env.get_current_time()
    period = shift(period_of(now, "UTC"), -1)
    async with sessionmaker() as session, session.begin():
        fund, _ = await ledger.ensure_fund(
            session, partner, ProgramPolicy(), policy_version=1, task_queue="unused", period=period
        )
    req = await make_request(sessionmaker, partner, amount_minor=50_000)  # the current period's fund
    async with sessionmaker() as session, session.begin():
        await session.execute(MdfEntry.__table__.update().where(MdfEntry.request_id == req.id).values(fund_id=fund.id))
        req_row = await session.get(type(req), req.id)
        req_row.fund_id = fund.id
        await ledger.add_entry(session, fund, ledger.EntryKind.claim, 40_000, key=None, by="system", request_id=req.id)
    deal = await make_deal(sessionmaker, partner, amount_minor=900_000, state="won")
    async with sessionmaker() as session, session.begin():
        (await session.get(type(deal), deal.id)).mdf_request_id = req.id
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await ts_env.client.start_workflow(
            QbrWorkflow.run, qbr_input(partner, period), id=qbr_id(str(partner.id), period), task_queue=task_queue
        )
        await handle.result()
    snap = await row(sessionmaker, QbrScorecard, partner.id, period)
    mdf = snap.inputs["mdf"]
    assert (mdf["allocated_minor"], mdf["claimed_minor"], mdf["attributed_revenue_minor"]) == (250_000, 40_000, 900_000)
    assert mdf["unclaimed_minor"] == 250_000 - 50_000  # reserved by the request, the rest still to request
    text = body(mailbox, "scorecard", partner.contact_email)
    assert "mdf: not scored" not in text and "Claim your USD 2,000.00 of MDF" in text, text


async def test_a_long_chase_continues_as_new_with_its_items(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    """A QBR whose history grows while its action items are chased (edits) continues as new once its
    tier review is settled, carrying the items, their versions and the reminders already sent."""
    policy = ProgramPolicy().model_copy(deep=True)
    policy.limits.history_events = 100
    await save_policy(sessionmaker, policy)
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    now = (await ts_env.get_current_time()).replace(microsecond=0)
    period = shift(period_of(now, "UTC"), -1)
    wid = qbr_id(str(partner.id), period)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        first = await ts_env.client.start_workflow(
            QbrWorkflow.run, qbr_input(partner, period), id=wid, task_queue=task_queue
        )
        handle = ts_env.client.get_workflow_handle(wid)  # the latest run, whichever it is
        await eventually(lambda: review_is(handle, ReviewState.pending), what="the tier review waiting")
        outcome = await handle.execute_update(
            QbrWorkflow.decide_tier, TierDecision(approve=False, reason="first quarter", by=f"cam:{cam.id}")
        )
        assert outcome.state == ReviewState.kept
        await handle.execute_update(
            QbrWorkflow.schedule, MeetingProposal(starts_at=now + timedelta(days=3), by=f"cam:{cam.id}")
        )
        await ts_env.sleep(timedelta(days=4))
        due = (now + timedelta(days=30)).date()
        await handle.execute_update(
            QbrWorkflow.record_notes,
            Notes(
                notes="Chase these.",
                by=f"cam:{cam.id}",
                action_items=[
                    ActionItemIn(title="Item one", owner=Owner.partner, due=due),
                    ActionItemIn(title="Item two", owner=Owner.cam, due=due),
                ],
            ),
        )
        for n in range(12):
            edit = ActionEdit(item_id=1 + n % 2, title=f"Item {1 + n % 2} rev {n}", by=f"cam:{cam.id}")
            await handle.execute_update(QbrWorkflow.edit_action, edit)
        await eventually(lambda: _moved_on(handle, first.result_run_id), what="continued as new")
        progress = await handle.query(QbrWorkflow.progress)
        assert [i.title for i in progress.action_items] == ["Item 1 rev 10", "Item 2 rev 11"]
        assert progress.review is not None and progress.review.state == ReviewState.kept
        await handle.execute_update(QbrWorkflow.complete_action, ActionDone(item_id=2, by=f"cam:{cam.id}"))
        await ts_env.sleep(timedelta(days=60))  # past every reminder and escalation of the chase
        await eventually(lambda: state_is(handle, QbrState.done), what="the continued run done")
    items = {n: await row(sessionmaker, QbrActionItem, partner.id, period, n) for n in (1, 2)}
    assert (items[1].title, items[2].done_by) == ("Item 1 rev 10", f"cam:{cam.id}")
    assert (await row(sessionmaker, Qbr, partner.id, period)).state == "done"
    assert [t for t, to in mails(mailbox)].count("action_reminder") == 1  # item 1's, sent once across runs


async def review_is(handle, state: ReviewState):
    progress = await handle.query(QbrWorkflow.progress)
    return progress.review is not None and progress.review.state == state


async def _moved_on(handle, first_run: str | None) -> bool:
    """The workflow's latest run is not its first (it continued as new)."""
    return (await handle.describe()).run_id != first_run
