"""Retries and crashes never duplicate a row or an email."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.common import CommonActivities
from activities.mail import Mailer
from core.registry import make_mailer
from domain.enums import Role, Tier
from domain.journeys import NotifyInput, SendInput
from journeys.onboarding.activities import OnboardingActivities
from journeys.onboarding.domain import MilestoneProgress, OpenPlanInput
from journeys.onboarding.models import PartnerMilestone
from store.models import AuditEvent, OutboxMessage
from tests.helpers.api import create_cam, enrol, new_key, nothing_twice, templates
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.policies import fast_policy
from tests.helpers.processes import process_env
from tests.helpers.waiting import eventually
from worker.services import SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[2]


async def _count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def _all_sent(sessionmaker) -> bool:
    return await _count(sessionmaker, OutboxMessage, OutboxMessage.status != "sent") == 0


async def test_notification_retried_writes_one_row_and_sends_one_email(sessionmaker, mailbox, base_settings):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.platinum, cam=cam)
    acts = CommonActivities(sessionmaker, make_mailer(base_settings), base_settings.ops_email)
    env = ActivityEnvironment()
    inp = NotifyInput(
        idempotency_key=f"onboarding-{partner.id}:notify:nudge:portal_access",
        partner_id=str(partner.id),
        journey="onboarding",
        template="nudge",
        recipients=["partner", "cam"],
        audit_action="onboarding.nudge_sent",
        context={"partner_name": partner.name, "milestone": "Portal", "due": "2026-01-01"},
    )
    first = await env.run(acts.queue_notification, inp)
    again = await env.run(acts.queue_notification, inp)
    assert (first.queued, again.queued) == (2, 0)
    sent = await env.run(acts.send_notifications, SendInput(idempotency_key=inp.idempotency_key))
    resent = await env.run(acts.send_notifications, SendInput(idempotency_key=inp.idempotency_key))
    assert (sent.sent, resent.sent, resent.already_sent) == (2, 0, 2)
    assert sorted(m["To"] for m in mailbox.messages) == sorted([partner.contact_email, cam.email])
    assert await _count(sessionmaker, OutboxMessage) == 2
    assert await _count(sessionmaker, AuditEvent, AuditEvent.idempotency_key == inp.idempotency_key) == 1


async def test_smtp_down_is_retried_then_sent_once(sessionmaker, mailbox, base_settings):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    down = Mailer(host="127.0.0.1", port=free_port(), sender=base_settings.mail_from)
    env = ActivityEnvironment()
    key = f"onboarding-{partner.id}:notify:welcome"
    inp = NotifyInput(
        idempotency_key=key,
        partner_id=str(partner.id),
        journey="onboarding",
        template="welcome",
        recipients=["partner"],
        audit_action="onboarding.welcome_sent",
        context={"partner_name": partner.name, "plan_days": 90, "milestones": []},
    )
    acts_down = CommonActivities(sessionmaker, down, base_settings.ops_email)
    await env.run(acts_down.queue_notification, inp)
    with pytest.raises(ApplicationError) as err:
        await env.run(acts_down.send_notifications, SendInput(idempotency_key=key))
    assert err.value.type == "SmtpError" and not err.value.non_retryable
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
        assert (row.status, row.attempts) == ("pending", 1) and row.last_error
    acts_up = CommonActivities(sessionmaker, make_mailer(base_settings), base_settings.ops_email)
    assert (await env.run(acts_up.send_notifications, SendInput(idempotency_key=key))).sent == 1
    assert [m["To"] for m in mailbox.messages] == [partner.contact_email]


async def test_worker_mailer_reuses_its_smtp_connection_and_replaces_one_the_server_closed(sessionmaker, base_settings):
    """The worker's mailer (`SMTP_POOL_SIZE`) sends one email after the other over one SMTP
    connection; once the server has closed it (restarted), the next email goes over a new
    connection: every email arrives once."""
    sink = SmtpSink().start()
    mailer = make_mailer(base_settings.model_copy(update={"smtp_port": sink.port}), pooled=True)
    acts = CommonActivities(sessionmaker, mailer, base_settings.ops_email)
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    env = ActivityEnvironment()

    async def welcome(n: int) -> int:
        key = f"onboarding-{partner.id}:notify:pooled-{n}"
        inp = NotifyInput(
            idempotency_key=key,
            partner_id=str(partner.id),
            journey="onboarding",
            template="welcome",
            recipients=["partner", "ops"],
            audit_action="onboarding.welcome_sent",
            context={"partner_name": partner.name, "plan_days": 90, "milestones": []},
        )
        return (await env.run(acts.notify, inp)).sent

    try:
        assert [await welcome(n) for n in range(3)] == [2, 2, 2]
        assert (len(sink.messages), sink.connections) == (6, 1)
        assert mailer.open_connections == 1
        # Restarted before this side noticed: the send fails on the old connection (nothing was
        # delivered) and goes once more over a new one.
        sink.stop()
        sink.start()
        rendered = mailer.render("onboarding", "welcome", {"partner_name": "A", "plan_days": 9, "milestones": []})
        await mailer.send(mailer.build(recipient="a@partner.test", rendered=rendered, msg_id="<restarted@test>"))
        assert (len(sink.messages), sink.connections) == (7, 2)
        # Restarted and noticed (the server closed it while idle): a new connection at once.
        sink.stop()
        sink.start()
        await eventually(lambda: mailer.open_connections == 0, what="the connection seen closed")
        assert await welcome(3) == 2
        assert (len(sink.messages), sink.connections) == (9, 3)
        assert len({m["Message-ID"] for m in sink.messages}) == 9  # none twice
    finally:
        sink.stop()


async def test_plan_written_once_when_retried(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=await make_cam(sessionmaker))
    from datetime import datetime

    plan = OpenPlanInput(
        idempotency_key=f"onboarding-{partner.id}:plan",
        partner_id=str(partner.id),
        policy_version=1,
        milestones=[
            MilestoneProgress(
                key="portal_access", title="Portal", required=True, due_at=datetime(2026, 1, 8, tzinfo=UTC)
            )
        ],
    )
    acts = OnboardingActivities(sessionmaker)
    env = ActivityEnvironment()
    assert (await env.run(acts.open_plan, plan)).applied is True
    assert (await env.run(acts.open_plan, plan)).applied is False
    assert await _count(sessionmaker, PartnerMilestone) == 1


async def test_worker_killed_mid_journey_a_new_one_finishes_it(api, ops, settings, mailbox, sessionmaker):
    """A real worker process is killed (SIGKILL) mid-journey; a new one completes the journey
    with no duplicate email and no duplicate row."""
    env = process_env(settings)

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # A long plan: the dead worker's workflow task times out (10 s) before the new one resumes it.
    policy = fast_policy(plan_days=120).model_dump(mode="json")
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    cam = await create_cam(api, ops)
    first = start_worker()
    try:
        partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="crash.test")
        pid = partner["id"]
        await eventually(lambda: "nudge" in templates(mailbox), timeout=30, what="first nudge")
        # Kill it once the nudge is recorded as sent: mid-journey, while timers are pending.
        # (A kill between the SMTP server accepting a message and the commit that marks it sent
        # re-sends it with the same Message-ID: at-least-once, see README.)
        await eventually(lambda: _all_sent(sessionmaker), what="outbox drained")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # Work falls due while no worker runs; the new worker picks the journey up where it was.
        cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
        second = start_worker()
        try:
            await eventually(lambda: "escalation" in templates(mailbox), timeout=45, what="escalation")
            for key in ("portal_access", "first_training", "first_certification", "business_plan", "first_deal"):
                r = await api.post(f"/partners/{pid}/onboarding/milestones/{key}", headers=cam_h)
                assert r.status_code == 200, r.text

            async def active():
                return (await api.get(f"/partners/{pid}", headers=ops)).json()["status"] == "active"

            await eventually(active, timeout=30, what="activated after the crash")
            await eventually(lambda: templates(mailbox).count("activated") == 2, what="activation emails")
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(20)
    finally:
        if first.poll() is None:
            first.kill()
    actions = await nothing_twice(sessionmaker, mailbox)
    assert actions["onboarding.plan_opened"] == 1 and actions["onboarding.activated"] == 1
    assert actions["onboarding.milestone_done"] == 5
    assert await _count(sessionmaker, PartnerMilestone) == 5
