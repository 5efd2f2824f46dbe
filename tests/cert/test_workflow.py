"""The certification renewal journey with the real policy on the time-skipping test server,
with the real activities against PostgreSQL and the SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from domain.enums import Tier
from domain.journeys import NOTIFY_PUBLISHING, Coverage
from domain.policy import ProgramPolicy
from journeys.cert.activities import CertActivities
from journeys.cert.domain import CertActivity, CertState, CertStateInput, Renewal
from journeys.cert.models import Certification
from journeys.cert.workflow import CertWorkflow
from journeys.onboarding.domain import OnboardingInput
from journeys.onboarding.workflow import OnboardingWorkflow
from store import repo
from store.models import AuditEvent
from store.models.integrations import WebhookEvent
from tests.cert.factories import cert_input, make_cert
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import local_steps, record_history, run_chain, runs_since
from tests.helpers.waiting import eventually
from worker.main import build_worker


def mails(mailbox) -> list[tuple[str, str]]:
    return [(m["X-CAMLights-Template"], m["To"]) for m in mailbox.messages]


async def cert_row(sessionmaker, cert) -> Certification:
    async with sessionmaker() as session:
        return await session.get(Certification, cert.id)


async def milestones_recorded(sessionmaker, partner) -> int:
    async with sessionmaker() as session:
        return await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.partner_id == partner.id, AuditEvent.action == "onboarding.milestone_done")
        )


async def renew(handle, renewal: Renewal) -> None:
    """The time-skipping test server cannot return an update's outcome once the run has continued
    as new (the dev server can: see test_cert_api), so wait for acceptance, then read the DB."""
    await handle.start_update(CertWorkflow.renew, renewal, wait_for_stage=WorkflowUpdateStage.ACCEPTED)


async def _renewed(sessionmaker, cert, period: int):
    row = await cert_row(sessionmaker, cert)
    return row if row.period == period and row.state == "active" else None


async def test_reminders_lapse_then_renewal_restores_and_continues_as_new(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    start = await ts_env.get_current_time()
    cert = await make_cert(sessionmaker, partner, expires_at=start + timedelta(days=90))
    person = cert.person_email
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
        started = await ts_env.client.start_workflow(
            CertWorkflow.run, cert_input(cert, partner), id=f"cert-{cert.id}", task_queue=task_queue
        )
        handle = ts_env.client.get_workflow_handle(started.id)  # follows the run chain
        await ts_env.sleep(timedelta(days=85))  # reminders at 60, 30 (+ CAM alert), 7 days before
        ours = [m for m in mails(mailbox) if m[0] in ("expiry_reminder", "cam_alert")]
        assert ours == [
            ("expiry_reminder", partner.contact_email),
            ("expiry_reminder", person),
            ("expiry_reminder", partner.contact_email),
            ("expiry_reminder", person),
            ("cam_alert", cam.email),
            ("expiry_reminder", partner.contact_email),
            ("expiry_reminder", person),
        ], ours
        assert (await cert_row(sessionmaker, cert)).restricted is False
        await ts_env.sleep(timedelta(days=6))  # expired (no grace by default): lapsed, restricted
        row = await cert_row(sessionmaker, cert)
        assert (row.state, row.restricted) == ("lapsed", True)
        assert sorted(to for t, to in mails(mailbox) if t == "lapsed") == sorted(
            [partner.contact_email, person, cam.email]
        )
        progress = await onboarding.query(OnboardingWorkflow.progress)
        assert (
            next(m for m in progress.milestones if m.key == "first_certification").done_by == f"journey:cert-{cert.id}"
        )
        # Told by the step that recorded `active` (the kit's generation 2), not by a signal of
        # the workflow's own; that step told again (a retry after its commit) changes nothing.
        events = [e.event_type for e in (await handle.fetch_history()).events]
        assert EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED not in events
        active = CertStateInput(
            idempotency_key=f"cert-{cert.id}:1:active",
            cert_id=str(cert.id),
            state=CertState.active,
            restricted=False,
            by="system",
            at=start,
            milestone_by="journey:cert-retried",
        )
        step = await ActivityEnvironment(ts_env.client).run(CertActivities(sessionmaker).record_state, active)
        assert step.applied is False
        progress = await onboarding.query(OnboardingWorkflow.progress)  # sees the repeated signal
        assert (
            next(m for m in progress.milestones if m.key == "first_certification").done_by == f"journey:cert-{cert.id}"
        )
        assert await milestones_recorded(sessionmaker, partner) == 1

        new_expiry = start + timedelta(days=500)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(CertWorkflow.renew, Renewal(expires_at=start + timedelta(days=10), by="ops:x"))
        assert err.value.cause.type == "TooShort"
        await renew(handle, Renewal(expires_at=new_expiry, by="ops:lms"))
        row = await eventually(lambda: _renewed(sessionmaker, cert, 2), what="renewal recorded")
        assert (row.state, row.restricted, row.period, row.expires_at) == ("active", False, 2, new_expiry)

        async def next_run():  # the run continued as new for the next period
            try:  # a query caught in the hand-over to the new run can time out: ask again
                progress = await handle.query(CertWorkflow.progress, rpc_timeout=timedelta(seconds=3))
            except RPCError:
                return None
            return progress if progress.period == 2 else None

        progress = await eventually(next_run, what="the next period's run")
        assert progress.expires_at == new_expiry and progress.state == "active"
        first_run = started.result_run_id

        # The first run continued as new: the newest run leads back to it (the skipping clock may
        # meanwhile have carried the next run on to a run of its own).
        runs = await eventually(
            lambda: runs_since(ts_env.client, handle.id, first_run), what="the first run continued as new"
        )
        assert runs >= 2
        first = ts_env.client.get_workflow_handle(handle.id, run_id=first_run)
        await record_history(first, "cert-lapsed-renewed")
        # Kit generation 4: the reminders and the lapse (timers) are sent by local activities, but
        # the email after the renewal is an activity: the renewal's answer goes out with the
        # workflow task that records it, not after an SMTP conversation. Generation 5: that email
        # carries the certification.renewed event (written in its transaction).
        events = (await first.fetch_history()).events
        kinds = [e.WhichOneof("attributes") for e in events]
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert scheduled == [NOTIFY_PUBLISHING], scheduled  # the renewed email, the journey's only activity
        async with sessionmaker() as session:
            published = await session.scalars(
                select(WebhookEvent.type).where(WebhookEvent.idempotency_key.startswith(f"{handle.id}:"))
            )
            assert sorted(published) == ["certification.lapsed", "certification.renewed"]
        assert kinds.count("marker_recorded_event_attributes") >= 5  # policy, states, reminders, lapse
        await handle.terminate("test over")
    assert ("renewed", partner.contact_email) in mails(mailbox)


async def test_grace_period_delays_the_restriction(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    async with sessionmaker() as session, session.begin():
        policy = ProgramPolicy().model_copy(deep=True)
        policy.cert.grace_days = 14
        await repo.save_policy(session, policy, created_by="test")
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    cert = await make_cert(sessionmaker, partner, expires_at=await ts_env.get_current_time() + timedelta(days=20))
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await ts_env.client.start_workflow(
            CertWorkflow.run, cert_input(cert, partner), id=f"cert-{cert.id}", task_queue=task_queue
        )
        await ts_env.sleep(timedelta(days=21))
        row = await cert_row(sessionmaker, cert)
        assert (row.state, row.restricted) == ("grace", False)
        await ts_env.sleep(timedelta(days=14))
        row = await cert_row(sessionmaker, cert)
        assert (row.state, row.restricted) == ("lapsed", True)
        # The grace period and the lapse: each recorded with its email in one step (generation 13).
        steps = await local_steps(ts_env.client, handle)
        assert steps.count(CertActivity.RECORD_STATE_AND_NOTIFY) == 2, steps
        assert steps.count(CertActivity.RECORD_STATE) == 1, steps  # the first period's `active` alone
        await record_history(handle, "cert-grace-lapsed")
        await handle.terminate("test over")
    # 60- and 30-day reminders had passed when it was recorded; 7-day one sent. No CAM: ops told.
    assert [t for t, _ in mails(mailbox)] == [
        "expiry_reminder",
        "expiry_reminder",
        "grace",
        "grace",
        "lapsed",
        "lapsed",
        "lapsed",
    ]
    assert ("lapsed", "ops@vendor.test") in mails(mailbox)
    # A registered partner has no CAM: only the partner, the certified person and ops were written to.
    assert {to for _, to in mails(mailbox)} == {partner.contact_email, cert.person_email, "ops@vendor.test"}


async def test_renewed_many_times_keeps_each_run_short(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    partner = await make_partner(sessionmaker, tier=Tier.silver)
    now = await ts_env.get_current_time()
    cert = await make_cert(sessionmaker, partner, expires_at=now + timedelta(days=365))
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        started = await ts_env.client.start_workflow(
            CertWorkflow.run, cert_input(cert, partner), id=f"cert-{cert.id}", task_queue=task_queue
        )
        handle = ts_env.client.get_workflow_handle(started.id)
        for year in range(1, 11):  # ten yearly renewals, each a few days before expiry
            await ts_env.sleep(timedelta(days=360))
            await renew(handle, Renewal(expires_at=now + timedelta(days=365 * (year + 1)), by="ops:lms"))
            await eventually(lambda year=year: _renewed(sessionmaker, cert, year + 1), what=f"renewal {year}")

        async def eleven_runs():  # the last renewal is in the DB before its run continues as new
            sizes = await run_chain(ts_env.client, handle.id, started.result_run_id)
            return sizes if len(sizes) == 11 else None

        sizes = await eventually(eleven_runs, what="the eleventh run")
        await handle.terminate("test over")
    assert len(sizes) == 11, sizes
    assert max(sizes) < 120, sizes  # each run holds one period, not ten years
    assert sum(sizes) > 5 * max(sizes), sizes  # one run would have held them all
    row = await cert_row(sessionmaker, cert)
    assert (row.period, row.state) == (11, "active")
    assert [t for t, _ in mails(mailbox)].count("renewed") == 20  # partner + person, ten times
