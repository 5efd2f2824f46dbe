"""A lead's journey has no `journeys` row (that needs a partner): the lead records its own start
(`JourneySpec.own_starts`). Temporal unreachable for the whole first start: the lead is kept (503,
"started automatically") and the reconciler starts it; a definite refusal removes everything."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from api import journeys
from journeys.leads.models import Lead
from store.models import AuditEvent
from tests.helpers.api import api_through, enrol
from tests.helpers.waiting import eventually
from tests.kit.test_start import StartFaults, running
from tests.leads.test_api import count_leads, lead_body, put_policy


async def test_an_unconfirmed_lead_start_is_started_by_the_reconciler(
    api, ops, worker, settings, dev_env, sessionmaker
):
    await put_policy(api, ops)
    await enrol(api, ops, tier="registered", domain="restarted.test")
    attempts = len(journeys.START_BACKOFF) + 1
    async with api_through(settings, dev_env, StartFaults(*["no_answer"] * attempts, "refuse")) as unlucky:
        r = await unlucky.post("/leads", json=lead_body(), headers=ops)
        assert r.status_code == 503 and "started automatically" in r.json()["detail"], r.text
        refused = await unlucky.post("/leads", json=lead_body(domain="refused.test"), headers=ops)
        assert refused.status_code == 503 and "nothing was written" in refused.json()["detail"], refused.text
    async with sessionmaker() as session:
        lead = await session.scalar(select(Lead))
        audits = await session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.journey == "leads"))
    assert await count_leads(sessionmaker) == 1 and audits == 1  # the refused one left nothing
    assert lead.domain == "initech.test" and lead.started_at is None and lead.start_input["lead_id"] == str(lead.id)

    assert await journeys.reconcile(sessionmaker, dev_env.client, older_than=timedelta(0)) == 1
    assert await running(dev_env, f"leads-{lead.id}")
    assert await journeys.reconcile(sessionmaker, dev_env.client, older_than=timedelta(0)) == 0  # confirmed

    async def offered() -> bool:
        async with sessionmaker() as session:
            return await session.scalar(select(Lead.state).where(Lead.id == lead.id)) == "offered"

    await eventually(offered, what="the reconciled lead routed and offered")
    r = await api.post("/leads", json=lead_body(domain="fine.test"), headers=ops)  # Temporal answers
    assert r.status_code == 201, r.text
    async with sessionmaker() as session:
        assert (await session.get(Lead, uuid.UUID(r.json()["id"]))).started_at is not None
