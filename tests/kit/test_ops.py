"""What ops watch: a step failing transiently for longer than the policy says is listed with its
last error, and leaves the list once it succeeds."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, text

from store.models import OutboxMessage
from store.models.integrations import WebhookEvent
from store.models.ops import RetryingStep
from tests.helpers.api import enrol
from tests.helpers.waiting import eventually


async def test_a_step_failing_for_too_long_is_listed_with_its_last_error(api, ops, worker, mailbox, sessionmaker):
    mailbox.defer("owner@busy.test")  # the partner's mailbox answers 451: the welcome keeps failing
    partner = await enrol(api, ops, tier="registered", domain="busy.test")
    wid = f"onboarding-{partner['id']}"

    async def listed(query: str):
        r = await api.get(f"/ops/retrying{query}", headers=ops)
        assert r.status_code == 200, r.text
        return [row for row in r.json() if row["workflow_id"] == wid]

    rows = await eventually(lambda: listed("?older_than_minutes=0.01"), timeout=30, what="listed as retrying")
    # The welcome, carrying the partner.enrolled event (kit generation 5).
    assert rows[0]["activity"] == "outbox.notify_publishing" and rows[0]["attempt"] >= 2
    assert "451" in rows[0]["last_failure"]
    assert await listed("") == []  # the policy's default (30 min) is not reached yet
    assert (await api.get("/ops/retrying", headers={"Authorization": "Bearer nope"})).status_code == 401
    mailbox.accept()
    await eventually(
        lambda: any(m["To"] == "owner@busy.test" for m in mailbox.messages),
        timeout=60,
        what="the welcome delivered once the mailbox accepts",
    )
    assert await eventually(lambda: _none(listed("?older_than_minutes=0.01")), what="no longer listed")
    assert await indexed(sessionmaker, wid) == 0  # the worker removed it from the index


async def indexed(sessionmaker, wid: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(
            select(func.count()).select_from(RetryingStep).where(RetryingStep.workflow_id == wid)
        )


async def _none(coro) -> bool:
    return not await coro


async def test_a_step_failing_in_a_journey_beyond_the_first_hundred_running_is_listed(
    api, ops, worker, mailbox, dev_env, task_queue, sessionmaker
):
    """Ops find a stuck journey by the worker's index of retrying steps, not by looking at the
    first running journeys: one stuck journey among more than a hundred newer ones is listed."""
    mailbox.defer("owner@stuck.test")
    partner = await enrol(api, ops, tier="registered", domain="stuck.test")
    wid = f"onboarding-{partner['id']}"
    for i in range(110):  # running journeys that wait (a delayed start): listed before the stuck one
        await dev_env.client.start_workflow(
            "WaitingJourney", id=f"waiting-{i}-{uuid.uuid4()}", task_queue=task_queue, start_delay=timedelta(hours=1)
        )

    async def listed():
        r = await api.get("/ops/retrying?older_than_minutes=0.01", headers=ops)
        assert r.status_code == 200, r.text
        return [row for row in r.json() if row["workflow_id"] == wid]

    rows = await eventually(listed, timeout=60, what="the stuck journey listed among 110 others")
    assert rows[0]["attempt"] >= 2 and "451" in rows[0]["last_failure"]
    # A journey that ends while its step retries leaves the list, and the index.
    await dev_env.client.get_workflow_handle(wid).terminate("test: ended by ops")
    assert await listed() == []
    assert await indexed(sessionmaker, wid) == 0


REFUSE_FUNCTION = """CREATE OR REPLACE FUNCTION test_refuse_events() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'webhook events refused by the test'; END $$"""
REFUSE_TRIGGER = (
    "CREATE TRIGGER test_refuse_events BEFORE INSERT ON webhook_events "
    "FOR EACH ROW EXECUTE FUNCTION test_refuse_events()"
)
ACCEPT_TRIGGER = "DROP TRIGGER IF EXISTS test_refuse_events ON webhook_events"
ACCEPT_FUNCTION = "DROP FUNCTION IF EXISTS test_refuse_events()"


async def test_a_local_step_failing_for_too_long_is_listed_as_an_activity(api, ops, worker, dev_env, sessionmaker):
    """A local activity (here the journey's welcome email, which writes its webhook event in its
    transaction since kit generation 5) that keeps failing goes on as an activity after a few
    attempts (patch `kit-local-then-activity`): listed like any other step, and gone once the
    cause is fixed. Neither the email nor the event is sent or written while the event is refused."""
    async with sessionmaker() as session, session.begin():  # the database refuses webhook events for now
        await session.execute(text(REFUSE_FUNCTION))
        await session.execute(text(REFUSE_TRIGGER))
    try:
        partner = await enrol(api, ops, tier="registered", domain="refused.test")
        wid = f"onboarding-{partner['id']}"

        async def listed():
            r = await api.get("/ops/retrying?older_than_minutes=0.01", headers=ops)
            assert r.status_code == 200, r.text
            return [row for row in r.json() if row["workflow_id"] == wid]

        rows = await eventually(listed, timeout=60, what="the failing email and event listed as retrying")
        assert rows[0]["activity"] == "outbox.notify_publishing" and rows[0]["attempt"] >= 2, rows
        assert "refused by the test" in rows[0]["last_failure"], rows
        async with sessionmaker() as session:  # the email's rows went with the refused event's transaction
            queued = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.partner_id == partner["id"])
            assert await session.scalar(queued) == 0
        handle = dev_env.client.get_workflow_handle(wid)
        assert (await handle.query("progress")) is not None  # the journey answers while its step retries
    finally:
        async with sessionmaker() as session, session.begin():
            await session.execute(text(ACCEPT_TRIGGER))
            await session.execute(text(ACCEPT_FUNCTION))
    assert await eventually(lambda: _none(listed()), timeout=60, what="no longer listed once events are accepted")
    assert await indexed(sessionmaker, wid) == 0
    async with sessionmaker() as session:  # published once, by the activity
        assert (
            await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.partner_id == uuid.UUID(partner["id"]), WebhookEvent.type == "partner.enrolled")
            )
            == 1
        )
