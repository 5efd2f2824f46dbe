"""The re-engagement of a dark partner without a CAM on the time-skipping server with the real
activities, PostgreSQL and SMTP (a policy day is an hour, one evaluation): dark after 3 days,
three emails a day apart, each with the one next step, then ops (an email and a Today item); it
ends as soon as the partner acts. Every step is idempotent on its key
(test_reengagement_steps_are_idempotent)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

import api.web.providers  # noqa: F401  (registers Today's providers)
from api.auth import Principal
from api.web.today import collect
from domain.enums import Role, Tier
from journeys.health.activities import HealthActivities
from journeys.health.domain import ReengageAction, ReengagementInput
from journeys.health.models import HealthReengagement
from journeys.health.workflow import HealthWorkflow
from store.models.portal import PartnerUser
from tests.health.factories import acted, health_input, health_policy, lapse, save
from tests.helpers.factories import make_partner
from tests.helpers.histories import record_history
from tests.helpers.waiting import eventually
from worker.main import build_worker

HOUR = timedelta(hours=1)  # a policy day


def sent(mailbox, template: str) -> list:
    return [m for m in mailbox.messages if m["X-CAMLights-Template"] == template]


async def dark_on_today(sessionmaker) -> list:
    ops = Principal(key_id=uuid.uuid4(), role=Role.ops, cam_id=None, partner_id=None)
    async with sessionmaker() as session:
        return [i for i in (await collect(session, ops)).items if i.kind == "health-dark"]


async def spell(sessionmaker, partner) -> HealthReengagement | None:
    async with sessionmaker() as session:
        return await session.scalar(select(HealthReengagement).where(HealthReengagement.partner_id == partner.id))


async def test_a_dark_partner_gets_its_emails_then_ops_and_it_stops_when_the_partner_acts(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    policy = health_policy(evaluate_seconds=3600, dark_days=3, reengage_every_days=1, reengage_emails=3)
    version = await save(sessionmaker, policy.model_copy(update={"day_seconds": 3600}))  # a policy day: an hour
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    await lapse(sessionmaker, partner, "Network Associate")
    client = ts_env.client
    async with build_worker(client, base_settings, sessionmaker, task_queue):
        handle = await client.start_workflow(
            HealthWorkflow.run, health_input(partner, version), id=f"health-{partner.id}", task_queue=task_queue
        )

        async def to_day(day: int) -> None:
            """Hour by hour (a policy day, one evaluation) to `day`, each evaluation done before the clock moves on."""
            while (await handle.query(HealthWorkflow.progress)).evaluations < day + 1:
                await ts_env.sleep(HOUR)
                await eventually(lambda: _settled(handle), what="the evaluation done")

        await eventually(lambda: _settled(handle), what="the first evaluation")
        await to_day(2)
        assert sent(mailbox, "reengage") == []  # not dark yet (3 days)
        await to_day(3)
        assert len(sent(mailbox, "reengage")) == 1  # the first email, on day 3
        await reads_german(sessionmaker, partner)  # from the second email on: its next step in German
        await to_day(5)
        assert len(sent(mailbox, "reengage")) == 3  # on days 4 and 5
        await to_day(6)
        assert len(sent(mailbox, "dark")) == 1  # ops told on day 6
        await to_day(8)
        emails = sent(mailbox, "reengage")
        assert [m["To"] for m in emails] == [partner.contact_email] * 3
        body = emails[0].get_body(("plain",)).get_content()
        assert "Renew your certification: certification Network Associate lapsed on" in body and "1 of 3" in body
        german = emails[1].get_body(("plain",)).get_content()
        assert "Erneuern Sie Ihre abgelaufene Zertifizierung." in german and "2 von 3" in german, german
        assert "Renew" not in german and "certification" not in german
        assert [m["To"] for m in sent(mailbox, "dark")] == [base_settings.ops_email]
        row = await spell(sessionmaker, partner)
        assert row is not None and (row.spell, row.emails, row.closed_at) == (1, 3, None)
        assert row.escalated_at is not None and row.last_step.startswith("Renew your certification")
        progress = await handle.query(HealthWorkflow.progress)
        assert progress.reengagement is not None and progress.reengagement.escalated
        assert [i.title for i in await dark_on_today(sessionmaker)] == [
            "Dark partner: 3 re-engagement emails unanswered"
        ]
        # The partner acts (a deal registered, say): the spell ends at the next evaluation and no
        # new one opens (it is not dark any more).
        await acted(sessionmaker, partner, await ts_env.get_current_time())  # now, on the test server's clock
        await to_day(9)
        # The day's evaluation may have been counted (the query) before its steps were recorded.
        assert await eventually(lambda: _closed(sessionmaker, partner), what="the spell closed")
        assert await dark_on_today(sessionmaker) == []
        await to_day(10)
        assert len(sent(mailbox, "reengage")) == 3 and len(sent(mailbox, "dark")) == 1
        await record_history(handle, "reengage")
        await handle.terminate("test over")


async def reads_german(sessionmaker, partner) -> None:
    """The partner's contact becomes a portal user who reads German (the language is the one at sending)."""
    async with sessionmaker() as session, session.begin():
        session.add(
            PartnerUser(
                partner_id=partner.id,
                name="Kim",
                email=partner.contact_email,
                role="admin",
                language="de",
                created_by="ops:test",
            )
        )


async def _settled(handle) -> bool:
    """Waiting for its timer: no activity under way, no workflow task."""
    desc = (await handle.describe()).raw_description
    return not desc.pending_activities and not desc.HasField("pending_workflow_task")


async def _closed(sessionmaker, partner) -> bool:
    row = await spell(sessionmaker, partner)
    return row is not None and row.closed_at is not None


async def test_reengagement_steps_are_idempotent(sessionmaker):
    """A retried or replayed step writes nothing twice (its key is claimed once)."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    acts = HealthActivities(sessionmaker)
    now = datetime.now(UTC)
    opened = ReengagementInput(
        idempotency_key=f"health-{partner.id}:reengage:1:open:1",
        partner_id=str(partner.id),
        spell=1,
        action=ReengageAction.open,
        at=now,
        emails=1,
        step="Sign in",
        since=partner.created_at,
    )
    assert (await acts.record_reengagement(opened)).applied
    assert not (await acts.record_reengagement(opened.model_copy(update={"emails": 7}))).applied
    told = opened.model_copy(update={"idempotency_key": "k:escalate", "action": ReengageAction.escalate, "step": ""})
    assert (await acts.record_reengagement(told)).applied
    row = await spell(sessionmaker, partner)
    assert row is not None and (row.emails, row.last_step, row.escalated_at, row.closed_at) == (1, "Sign in", now, None)
