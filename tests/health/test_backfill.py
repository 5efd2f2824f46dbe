"""Turning `health.watch` on backfills: every partner enrolled before gets its `health-{id}`
record with the policy version (started by the reconciler), once per workflow id, however
often the policy is saved again; partners enrolled after are started with their enrolment."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from api.journeys import reconcile
from store.models import JourneyRecord
from tests.health.factories import health_policy
from tests.helpers.api import enrol


async def health_records(sessionmaker) -> list[JourneyRecord]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(JourneyRecord).where(JourneyRecord.journey == "health"))).all())


async def test_switching_watch_on_backfills_every_partner_once(api, ops, sessionmaker, dev_env, settings):
    before = [await enrol(api, ops, tier="registered", domain=f"{uuid.uuid4().hex[:8]}.acme.test") for _ in range(3)]
    assert await health_records(sessionmaker) == []  # health.watch is off by default
    policy = health_policy().model_dump(mode="json")
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201
    records = await health_records(sessionmaker)
    assert sorted(r.workflow_id for r in records) == sorted(f"health-{p['id']}" for p in before)
    assert {r.start_input["policy_version"] for r in records} == {r.json()["version"]}
    assert all(r.started_at is None and r.task_queue == settings.task_queue for r in records)
    assert await reconcile(sessionmaker, dev_env.client, older_than=timedelta(0)) == 3
    for p in before:
        desc = await dev_env.client.get_workflow_handle(f"health-{p['id']}").describe()
        assert desc.workflow_type == "HealthWorkflow"
    # Saved again (and a partner enrolled since, started with its enrolment): nothing twice.
    await enrol(api, ops, tier="registered", domain=f"{uuid.uuid4().hex[:8]}.acme.test")
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    async with sessionmaker() as session:
        counts = await session.execute(
            select(JourneyRecord.workflow_id, func.count())
            .where(JourneyRecord.journey == "health")
            .group_by(JourneyRecord.workflow_id)
        )
        assert sorted(n for _, n in counts.all()) == [1, 1, 1, 1]
    assert all(r.started_at is not None for r in await health_records(sessionmaker))
