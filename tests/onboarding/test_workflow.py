"""The onboarding journey with the real 90-day policy on the time-skipping test server,
with the real activities against PostgreSQL and the SMTP server."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from core.settings import Settings
from domain.enums import PartnerStatus, Tier
from domain.journeys import Coverage
from journeys.onboarding.domain import MilestoneDone, OnboardingInput, OnboardingState
from journeys.onboarding.models import PartnerMilestone
from journeys.onboarding.workflow import OnboardingWorkflow
from store.models import AuditEvent, OutboxMessage, Partner
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import record_history
from worker.main import build_worker


def _by_template(mailbox):
    out: dict[str, list[str]] = {}
    for msg in mailbox.messages:
        out.setdefault(msg["X-CAMLights-Template"], []).append(msg["To"])
    return out


async def _start(env, partner, cam, task_queue):
    return await env.client.start_workflow(
        OnboardingWorkflow.run,
        OnboardingInput(
            partner_id=str(partner.id),
            partner_name=partner.name,
            coverage=Coverage(tier=partner.tier, cam_id=str(cam.id) if cam else None),
        ),
        id=f"onboarding-{partner.id}",
        task_queue=task_queue,
    )


async def test_gold_partner_nudged_escalated_then_activated(
    ts_env, sessionmaker, mailbox, base_settings: Settings, task_queue
):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        wall = time.monotonic()
        handle = await _start(ts_env, partner, cam, task_queue)
        await ts_env.sleep(timedelta(days=1))
        await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key="portal_access", by="partner:x"))
        await ts_env.sleep(timedelta(days=39))  # day 40: training nudged (d30); escalated at d44 later
        await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key="business_plan", by="cam:x"))
        await ts_env.sleep(timedelta(days=10))  # day 50
        progress = await handle.query(OnboardingWorkflow.progress)
        assert progress.state == OnboardingState.in_progress
        by_key = {m.key: m for m in progress.milestones}
        assert by_key["first_training"].nudged and by_key["first_training"].escalated
        assert by_key["portal_access"].done_at is not None and not by_key["portal_access"].nudged
        for key in ("first_training", "first_certification", "first_deal"):
            await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key=key, by="partner:x"))
        result = await handle.result()
        elapsed = time.monotonic() - wall
        await record_history(handle, "gold-activated")
    assert result.state == OnboardingState.activated
    assert result.missing == []
    assert elapsed < 30, f"time skipping should make 50 days quick, took {elapsed:.1f}s"

    mails = _by_template(mailbox)
    assert mails == {
        "welcome": [partner.contact_email],
        "nudge": [partner.contact_email],  # first_training at day 30 (gold: CAM not copied)
        "escalation": [cam.email],  # first_training still open at day 44
        "activated": [partner.contact_email, cam.email],
    }, mails
    nudge = next(m for m in mailbox.messages if m["X-CAMLights-Template"] == "nudge")
    assert "Complete the first sales training" in nudge.get_body(("plain",)).get_content()
    assert "<strong>Complete the first sales training</strong>" in nudge.get_body(("html",)).get_content()

    async with sessionmaker() as session:
        db_partner = await session.get(Partner, partner.id)
        assert db_partner.status == PartnerStatus.active
        done = (await session.scalars(select(PartnerMilestone).where(PartnerMilestone.partner_id == partner.id))).all()
        assert {m.key for m in done if m.done_at} == {
            "portal_access",
            "first_training",
            "first_certification",
            "first_deal",
            "business_plan",
        }
        assert (
            await session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent"))
            == 0
        )
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.partner_id == partner.id).order_by(AuditEvent.id)
            )
        ).all()
    assert actions[0] == "onboarding.plan_opened"
    assert actions.count("onboarding.milestone_done") == 5
    assert actions[-2:] == ["onboarding.activated", "onboarding.activated_sent"]


async def test_registered_partner_at_risk_alerts_ops_never_a_cam(
    ts_env, sessionmaker, mailbox, base_settings: Settings, task_queue
):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await _start(ts_env, partner, None, task_queue)
        await ts_env.sleep(timedelta(days=20))
        await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key="portal_access", by="partner:x"))
        result = await handle.result()
        await record_history(handle, "registered-at-risk")
    assert result.state == OnboardingState.at_risk
    assert set(result.missing) == {"first_training", "first_deal"}  # certification not required here
    mails = _by_template(mailbox)
    assert mails == {
        "welcome": [partner.contact_email],
        "nudge": [partner.contact_email] * 3,  # portal (d7, before it was done), training, deal
        "at_risk": [partner.contact_email, "ops@vendor.test"],
    }, mails
    async with sessionmaker() as session:
        assert (await session.get(Partner, partner.id)).status == PartnerStatus.at_risk


async def test_platinum_cam_copied_on_every_nudge(ts_env, sessionmaker, mailbox, base_settings: Settings, task_queue):
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.platinum, cam=cam)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await _start(ts_env, partner, cam, task_queue)
        await ts_env.sleep(timedelta(days=8))
        for key in ("portal_access", "first_training", "first_certification", "first_deal", "business_plan"):
            await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key=key, by="cam:x"))
        assert (await handle.result()).state == OnboardingState.activated
        await record_history(handle, "platinum-activated")
    assert _by_template(mailbox)["nudge"] == [partner.contact_email, cam.email]
