"""Kit generation 5: a catalog event rides with the email that tells the same news (one
transaction, `outbox.notify_publishing`), and an event held for an email is never held across a
wait (workflows/kit.py `emit(email_follows=True)`). Against the real dev server and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import select
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core import registry
from domain.enums import Tier
from domain.journeys import Coverage
from domain.webhooks import WebhookActivity
from journeys.onboarding.events import PartnerEvent
from store.models.integrations import WebhookEvent
from tests.helpers.factories import make_partner
from tests.helpers.histories import local_steps
from tests.helpers.waiting import eventually
from worker.integrations import integration_activities
from workflows.kit import JourneyKit


class HeldInput(BaseModel):
    partner_id: str
    wait_seconds: float  # > 0: a wait between the held event and the email
    recipients: list[str]


@workflow.defn(name="KitHeldEventTest", sandboxed=False)
class HeldEventWorkflow:
    """An event held for the next email, then (maybe) a wait, then the email."""

    @workflow.run
    async def run(self, inp: HeldInput) -> None:
        kit = JourneyKit("onboarding", inp.partner_id, Coverage(tier=Tier.registered))
        assert kit.carries_events
        event = PartnerEvent(partner_id=inp.partner_id, partner_name="Held", tier="registered", state="in_progress")
        await kit.emit("partner.enrolled", event, email_follows=True)
        if inp.wait_seconds:
            await kit.wait(lambda: False, timedelta(seconds=inp.wait_seconds), summary="a long wait")
        await kit.notify("nudge", inp.recipients, milestone="Log in", due="soon", partner_name="Held")


async def _events(sessionmaker, wid: str) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookEvent.type).where(WebhookEvent.idempotency_key.startswith(f"{wid}:"))
        )
        return list(rows)


async def test_an_event_held_for_an_email_is_published_before_a_wait(
    dev_env, settings, sessionmaker, task_queue, mailbox
):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    resources = registry.Resources(sessionmaker=sessionmaker, mailer=registry.make_mailer(settings), settings=settings)
    async with Worker(
        dev_env.client,
        task_queue=task_queue,
        workflows=[HeldEventWorkflow],
        activities=registry.activities(resources) + integration_activities(resources),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        # A wait between: the event is published on its own before it, not days later with the email.
        waiting = await dev_env.client.start_workflow(
            HeldEventWorkflow.run,
            HeldInput(partner_id=str(partner.id), wait_seconds=3600, recipients=["partner"]),
            id=f"kit-held-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert await eventually(lambda: _events(sessionmaker, waiting.id), what="the event before the wait") == [
            "partner.enrolled"
        ]
        assert await local_steps(dev_env.client, waiting) == [WebhookActivity.PUBLISH]
        assert mailbox.messages == []  # the email still waits
        await waiting.terminate("test over")

        # No wait: the event rides with the email, no step of its own.
        riding = await dev_env.client.start_workflow(
            HeldEventWorkflow.run,
            HeldInput(partner_id=str(partner.id), wait_seconds=0, recipients=["partner"]),
            id=f"kit-held-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await riding.result()
        assert await local_steps(dev_env.client, riding) == ["outbox.notify_publishing"]
        assert await _events(sessionmaker, riding.id) == ["partner.enrolled"]
        assert len(mailbox.messages) == 1

        # No one to email: the held event is published on its own all the same.
        nobody = await dev_env.client.start_workflow(
            HeldEventWorkflow.run,
            HeldInput(partner_id=str(partner.id), wait_seconds=0, recipients=[]),
            id=f"kit-held-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await nobody.result()
        assert await local_steps(dev_env.client, nobody) == [WebhookActivity.PUBLISH]
        assert await _events(sessionmaker, nobody.id) == ["partner.enrolled"]
