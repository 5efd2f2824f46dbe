"""One way to start every journey (api/journeys.start_journey), tested against faults injected
between the API's Temporal client and the real dev server: a lost reply (the server started the
workflow, the client saw an error), no answer at all, and a definite refusal."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import func, select
from temporalio.client import Interceptor, OutboundInterceptor, StartWorkflowInput
from temporalio.service import RPCError, RPCStatusCode

from api import journeys
from store.models import AuditEvent, IdempotencyRecord, JourneyRecord, Partner
from tests.helpers.api import api_through, create_cam
from tests.helpers.waiting import eventually


class StartFaults(Interceptor):
    """Replays a script of faults on `start_workflow`, one entry per call, then passes through:
    "lose_reply": the server starts the workflow, the reply is lost (UNAVAILABLE);
    "no_answer": the request never reaches the server (UNAVAILABLE);
    "refuse": the server refuses (INVALID_ARGUMENT)."""

    def __init__(self, *script: str):
        self.script = list(script)
        self.calls = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        faults = self

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput):
                faults.calls += 1
                fault = faults.script.pop(0) if faults.script else "pass"
                if fault == "lose_reply":
                    await self.next.start_workflow(input)
                    raise RPCError("connection reset while reading the reply", RPCStatusCode.UNAVAILABLE, b"")
                if fault == "no_answer":
                    raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
                if fault == "refuse":
                    raise RPCError("namespace is not allowed", RPCStatusCode.INVALID_ARGUMENT, b"")
                return await self.next.start_workflow(input)

        return Outbound(next)


@pytest_asyncio.fixture
async def faulty_api(settings, dev_env, sessionmaker):
    """The real app whose Temporal client goes through `StartFaults` (set `.faults` per test)."""

    def make(faults: StartFaults):
        return api_through(settings, dev_env, faults)

    return make


def partner_body(domain: str, cam_id: str) -> dict:
    return {
        "name": "Lost Reply Ltd",
        "domain": domain,
        "country": "DE",
        "type": "reseller",
        "tier": "gold",
        "cam_id": cam_id,
        "contact_email": f"owner@{domain}",
    }


async def count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def running(dev_env, wid: str) -> bool:
    return (await dev_env.client.get_workflow_handle(wid).describe()).status.name == "RUNNING"


async def test_lost_reply_is_retried_and_already_started_is_success(
    api, ops, worker, faulty_api, dev_env, sessionmaker, mailbox
):
    cam = await create_cam(api, ops)
    faults = StartFaults("lose_reply")
    async with faulty_api(faults) as client:
        r = await client.post("/partners", json=partner_body("lost.test", cam["id"]), headers=ops)
    assert r.status_code == 201, r.text
    assert faults.calls == 2  # the lost reply, then "already started"
    pid = r.json()["id"]
    wid = f"onboarding-{pid}"
    assert await count(sessionmaker, Partner, Partner.id == uuid.UUID(pid)) == 1  # no deleted row
    assert await running(dev_env, wid)  # no orphan: the workflow is the partner's journey
    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, wid)
        assert record is not None and record.started_at is not None
    await eventually(lambda: any(m["To"] == "owner@lost.test" for m in mailbox.messages), what="welcome email")


async def test_no_answer_keeps_the_rows_and_a_retry_with_the_same_key_answers_success(
    api, ops, worker, faulty_api, dev_env, sessionmaker
):
    cam = await create_cam(api, ops)
    headers = {**ops, "Idempotency-Key": "enrol-nobody-answers"}
    body = partner_body("silent.test", cam["id"])
    faults = StartFaults(*["no_answer"] * len(journeys.START_BACKOFF + (None,)))
    async with faulty_api(faults) as client:
        r = await client.post("/partners", json=body, headers=headers)
    assert r.status_code == 503 and "Idempotency-Key" in r.json()["detail"], r.text
    assert r.headers["Retry-After"] == "5"
    assert faults.calls == len(journeys.START_BACKOFF) + 1
    async with sessionmaker() as session:
        partner = await session.scalar(select(Partner).where(Partner.domain == "silent.test"))
        assert partner is not None  # kept: the start may have happened
        record = await session.get(JourneyRecord, f"onboarding-{partner.id}")
        assert record is not None and record.started_at is None
    # The client retries with the same key: the stored answer, and the journey now runs.
    r = await api.post("/partners", json=body, headers=headers)
    assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true", r.text
    assert r.json()["id"] == str(partner.id)
    assert await running(dev_env, f"onboarding-{partner.id}")
    assert await count(sessionmaker, Partner) == 1


async def test_reconciler_starts_a_journey_whose_start_was_never_confirmed(
    api, ops, worker, faulty_api, dev_env, sessionmaker, settings
):
    """As after an API killed between the commit and the start: the row is there, no workflow."""
    cam = await create_cam(api, ops)
    async with faulty_api(StartFaults(*["no_answer"] * 5)) as client:
        r = await client.post("/partners", json=partner_body("crashed.test", cam["id"]), headers=ops)
    assert r.status_code == 503
    async with sessionmaker() as session:
        partner = await session.scalar(select(Partner).where(Partner.domain == "crashed.test"))
    wid = f"onboarding-{partner.id}"
    started = await journeys.reconcile(sessionmaker, dev_env.client, older_than=timedelta(0))
    assert started == 1
    assert await running(dev_env, wid)
    assert await journeys.reconcile(sessionmaker, dev_env.client) == 0  # confirmed: nothing left to do


async def test_definite_refusal_removes_everything_the_request_wrote(api, ops, faulty_api, sessionmaker):
    cam = await create_cam(api, ops)
    headers = {**ops, "Idempotency-Key": "enrol-refused"}
    body = partner_body("refused.test", cam["id"])
    async with faulty_api(StartFaults("refuse")) as client:
        r = await client.post("/partners", json=body, headers=headers)
    assert r.status_code == 503 and "nothing was enrolled" in r.json()["detail"], r.text
    assert await count(sessionmaker, Partner) == 0
    assert await count(sessionmaker, JourneyRecord) == 0
    assert await count(sessionmaker, AuditEvent, AuditEvent.action == "partner.enrolled") == 0
    assert await count(sessionmaker, IdempotencyRecord) == 0
    # Nothing half-written: the same request (same key) can simply be sent again.
    r = await api.post("/partners", json=body, headers=headers)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text


async def test_the_confirmation_is_written_after_the_answer_and_a_lost_one_is_the_reconcilers(
    api, ops, worker, dev_env, sessionmaker, caplog
):
    """A create's last write, the start's confirmation, runs once the answer is sent
    (`confirm_started`): a failure there answers nothing and loses nothing. The record stays
    unconfirmed, and the reconciler starts the journey again ("already started": the same run)
    and confirms it."""
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from worker.services import free_port

    cam = await create_cam(api, ops)
    r = await api.post("/partners", json=partner_body("confirmed.test", cam["id"]), headers=ops)
    assert r.status_code == 201, r.text
    wid = f"onboarding-{r.json()['id']}"
    async with sessionmaker() as session:
        assert (await session.get(JourneyRecord, wid)).started_at is not None  # written once answered
        await session.execute(update(JourneyRecord).where(JourneyRecord.workflow_id == wid).values(started_at=None))
        await session.commit()
    run_id = (await dev_env.client.get_workflow_handle(wid).describe()).run_id

    nowhere = create_async_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    try:
        await journeys.confirm_started(async_sessionmaker(nowhere), [wid])  # logged, never raised
    finally:
        await nowhere.dispose()
    assert f"recording the start of {wid} failed; the reconciler will" in caplog.text
    async with sessionmaker() as session:
        assert (await session.get(JourneyRecord, wid)).started_at is None

    await journeys.reconcile(sessionmaker, dev_env.client, older_than=timedelta(0))
    async with sessionmaker() as session:
        assert (await session.get(JourneyRecord, wid)).started_at is not None
    assert (await dev_env.client.get_workflow_handle(wid).describe()).run_id == run_id  # not started twice
