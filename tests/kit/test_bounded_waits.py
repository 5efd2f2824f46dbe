"""Nothing waits without a deadline: an API call waiting on a journey answers in time (504 when
no worker takes it) and holds no database connection meanwhile, so a hundred slow or failing
requests never take /health or the lists down."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest_asyncio
from sqlalchemy import text

from api.app import create_app
from tests.helpers.api import deal_body, enrol
from tests.helpers.waiting import eventually

DEADLINE = 6.0


@pytest_asyncio.fixture
async def slow_api(settings, sessionmaker):
    """The real app with a short update deadline. No worker runs on its task queue: every
    update waits for a worker that never comes."""
    app = create_app(settings.model_copy(update={"update_deadline_seconds": DEADLINE}), reconcile_every=None)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as c:
            yield c


async def idle_in_transaction(sessionmaker) -> int:
    async with sessionmaker() as session:
        return await session.scalar(
            text(
                "select count(*) from pg_stat_activity"
                " where state like 'idle in transaction%' and pid <> pg_backend_pid()"
                " and state_change < now() - interval '1 second'"  # held across a wait, not between two queries
            )
        )


async def test_a_hundred_waiting_requests_leave_health_and_lists_answering(slow_api, ops, sessionmaker):
    partner = await enrol(slow_api, ops, tier="registered", domain="slow.test")
    deal_ids = []
    for i in range(20):  # Temporal admits a few updates in flight per workflow: spread them
        body = {**deal_body(customer_domain=f"c{i}.com", customer_name=f"Customer {i}"), "partner_id": partner["id"]}
        r = await slow_api.post("/deals", json=body, headers=ops)
        assert r.status_code == 201, r.text
        deal_ids.append(r.json()["id"])

    async def decide(i: int, reason: str) -> httpx.Response:
        body = {"decision": "approve", "reason": reason}
        return await slow_api.post(f"/deals/{deal_ids[i % len(deal_ids)]}/decision", json=body, headers=ops)

    started = time.monotonic()
    slow = [asyncio.create_task(decide(i, "looks good")) for i in range(80)]
    failing = [asyncio.create_task(decide(i, "bad\x00reason")) for i in range(20)]
    # The failing requests, sent after the slow ones, answered: every slow one is in flight (deadline 6 s).
    await eventually(lambda: all(task.done() for task in failing), what="the failing requests answered")
    rounds = 0
    while True:
        health = await slow_api.get("/health")
        partners = await slow_api.get("/partners", headers=ops)
        idle = await idle_in_transaction(sessionmaker)
        if any(task.done() for task in slow):  # only rounds answered while every slow request waits count
            break
        # answered while every slow request is still waiting on its journey: nothing queues behind them
        assert health.status_code == 200, health.text
        assert partners.status_code == 200 and len(partners.json()) == 1
        assert idle == 0  # no session held open across the wait
        rounds += 1
        await asyncio.sleep(0.1)
    assert rounds >= 3, rounds
    slow_answers = await asyncio.gather(*slow)
    failing_answers = await asyncio.gather(*failing)
    elapsed = time.monotonic() - started
    assert {a.status_code for a in failing_answers} == {422}
    assert all("NUL" in a.json()["detail"] for a in failing_answers)
    assert {a.status_code for a in slow_answers} == {504}, {(a.status_code, a.text) for a in slow_answers}
    assert "may still apply" in slow_answers[0].json()["detail"]
    assert elapsed < DEADLINE + 30, elapsed  # every request answered after its deadline, none left open
