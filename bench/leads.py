"""Lead distribution: routing one lead at 10,000 partners (the candidate query in PostgreSQL plus
the pick), p50 / p95 over 200 leads; then N leads written and their journeys started (as the API
does), timed until every one is offered, beside the bare-Temporal baseline of the same shape.

Business steps of one journey (route and offer, the offer email, its event): 3."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from bench import harness, seed
from bench.harness import Section, Stack

BUSINESS_STEPS = 3
ROUTED_PARTNERS = 10_000


def lead_rows(n: int) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "id": uuid.uuid4(),
            "external_id": f"bench-{i}",
            "company": f"Company {i}",
            "domain": f"c{i}.example",
            "contact_name": "Pat",
            "contact_email": f"pat@c{i}.example",
            "country": "DE",
            "region": "",
            "product_category": seed.CATEGORIES[i % len(seed.CATEGORIES)],
            "value_minor": None,
            "currency": None,
            "source": "bench",
            "notes": "",
            "state": "new",
            "partner_id": None,
            "deal_id": None,
            "state_reason": None,
            "routing": [],
            "policy_version": 1,
            "created_by": "ops:bench",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]


async def routing_p95(st: Stack) -> Section:
    from journeys.leads.activities import candidates
    from journeys.leads.domain import LeadFacts, route
    from journeys.leads.policy import LeadsPolicy

    await harness.seed_partners(st, ROUTED_PARTNERS)
    policy = LeadsPolicy()
    times = []
    async with st.sessionmaker() as session:
        for i in range(201):
            t = time.perf_counter()
            pool = await candidates(session, "DE")
            got = route(LeadFacts(lead_id=f"L{i}", country="DE", product_category="network"), pool, policy, set(), 1)
            if i:  # the first one warms the connection and the plan
                times.append((time.perf_counter() - t) * 1000)
            assert got.placed
    s = Section(f"leads: routing one lead at {len(pool)} partners (candidate query + pick)")
    s.add("p50", f"{harness.percentile(times, 50):.1f} ms")
    s.add("p95", f"{harness.percentile(times, 95):.1f} ms (target: under 20 ms)")
    return s


async def run(st: Stack, n: int) -> list[Section]:
    from journeys.leads.domain import JOURNEY, LeadInput, LeadState
    from journeys.leads.models import Lead
    from worker.main import build_worker

    sections = [await routing_p95(st)]
    rows = lead_rows(n)
    async with st.sessionmaker() as session, session.begin():
        session.add_all(Lead(**row) for row in rows)
    task_queue = f"bench-leads-{uuid.uuid4().hex[:8]}"

    async def journey(row):
        inp = LeadInput(
            lead_id=str(row["id"]),
            company=row["company"],
            country="DE",
            product_category=row["product_category"],
            source="bench",
        )
        handle = await st.client.start_workflow("LeadWorkflow", inp, id=f"{JOURNEY}-{row['id']}", task_queue=task_queue)

        async def offered() -> bool:
            async with st.sessionmaker() as session:
                lead = await session.get(Lead, row["id"])
                return lead is not None and lead.state != LeadState.new.value

        while not await offered():
            await asyncio.sleep(0.05)
        return handle

    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        wall, handles = await harness.drive("leads", rows, journey)
        real = {"wall": wall, **await harness.history_stats(handles[:50])}
        for handle in handles:
            await handle.terminate("bench over")
    s = Section(f"leads: {n} leads imported and started")
    s.add("until every one is offered", f"{wall:.1f} s ({n / wall:.0f} leads/s)")
    sections.append(s)
    sections.append(await harness.compare(st.client, "leads", n, real, BUSINESS_STEPS))
    return sections
