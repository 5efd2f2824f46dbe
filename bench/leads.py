"""Lead distribution: routing one lead at 10,000 partners (`route_in_db`: the rule's query in
PostgreSQL and the pick), p50 / p95 over 200 leads and PostgreSQL's own time for the query, round
robin and weighted, without and with 30,000 offers in the history; then N leads written and their
journeys started (as the API does), timed until every one is offered (one poll for all), beside
the bare-Temporal baseline of the same shape.

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
HISTORY_LEADS = 10_000  # leads in the history of the second routing pass (3 offers each)


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


HISTORY_SQL = """
insert into leads (id, external_id, company, domain, contact_name, contact_email, country, region,
    product_category, source, notes, state, routing, policy_version, created_by)
select gen_random_uuid(), 'history-' || i, 'Company ' || i, 'h' || i || '.example', 'Pat', 'pat@example.com',
    'DE', '', 'network', 'bench', '', 'accepted', '[]', 1, 'ops:bench'
from generate_series(1, :leads) i;
insert into lead_offers (lead_id, offer_no, partner_id, reasons, state, offered_at, expires_at, answered_at, step_key)
select l.id, o.no, p.id, '[]', (array['accepted', 'declined', 'expired', 'live'])[1 + (o.no + p.n) % 4],
    now() - (p.n % 400) * interval '1 hour', now() + interval '1 day', now() - (p.n % 300) * interval '1 hour', 'bench'
from (select id, row_number() over () as n from leads where external_id like 'history-%') l
cross join generate_series(1, :per_lead) o(no)
join (select id, row_number() over (order by id) as n from partners) p
    on p.n = 1 + (l.n * :per_lead + o.no) % :partners;
insert into lead_preferences (partner_id, accepting, capacity, countries, regions, categories)
select id, n % 10 <> 0, 5 + n % 10, case when n % 3 = 0 then array['DE', 'AT', 'CH'] else '{}' end, '{}',
    case when n % 2 = 0 then array['network', 'security'] else '{}' end
from (select id, row_number() over (order by id) as n from partners) p where n % 10 < 2;
insert into lead_partner_stats (partner_id, live, accepted, answered, last_offered_at, last_accepted_at)
select partner_id, count(*) filter (where state = 'live'), count(*) filter (where state = 'accepted'),
    count(*) filter (where state in ('accepted', 'declined', 'expired')), max(offered_at),
    max(answered_at) filter (where state = 'accepted')
from lead_offers group by partner_id;
analyze;
"""


async def _route_times(st: Stack, policy) -> tuple[list[float], int]:
    from journeys.leads.activities import route_in_db
    from journeys.leads.domain import LeadFacts

    times, eligible = [], 0
    async with st.sessionmaker() as session:
        for i in range(201):
            lead = LeadFacts(lead_id=f"L{i}", country="DE", product_category="network")
            t = time.perf_counter()
            got = await route_in_db(session, lead, policy, (), 1)
            if i:  # the first one warms the connection and the plan
                times.append((time.perf_counter() - t) * 1000)
            assert got.placed
            eligible = int(got.reasons[-1].split(" eligible")[0].rsplit(" ", 1)[-1])
    return times, eligible


async def _explained(st: Stack, policy) -> str:
    """PostgreSQL's own time for the rule's query (EXPLAIN ANALYZE, without per-node timing, of the
    SQL routing sends), p50 / p95 of 41."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    from journeys.leads import activities
    from journeys.leads.domain import LeadFacts

    lead = LeadFacts(lead_id="x", country="DE", product_category="network")
    query = activities.rule_query(lead, (), policy.rules[0], 1)
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    times = []
    async with st.sessionmaker() as session:
        for _ in range(41):
            plan = [r[0] for r in (await session.execute(text("EXPLAIN (ANALYZE, TIMING OFF) " + sql))).all()]
            times.append(float(next(ln for ln in plan if ln.startswith("Execution Time")).split()[2]))
    return f"{harness.percentile(times, 50):.1f} / {harness.percentile(times, 95):.1f} ms"


async def routing_p95(st: Stack) -> Section:
    from sqlalchemy import text

    from journeys.leads.policy import LeadsPolicy, Picker

    await harness.seed_partners(st, ROUTED_PARTNERS)
    policy = LeadsPolicy()
    weighted = policy.model_copy(
        update={"rules": [r.model_copy(update={"picker": Picker.weighted}) for r in policy.rules]}
    )
    s = Section(f"leads: routing one lead at {ROUTED_PARTNERS} partners (candidate query + pick), p50 / p95")

    async def measure(label: str, rules: LeadsPolicy) -> None:
        times, eligible = await _route_times(st, rules)
        s.add(
            label,
            f"{harness.percentile(times, 50):.1f} / {harness.percentile(times, 95):.1f} ms (target: p95 under 20 ms); "
            f"{eligible} eligible; PostgreSQL {await _explained(st, rules)}",
        )

    await measure("no offers yet, round robin", policy)
    await measure("no offers yet, weighted", weighted)
    async with st.sessionmaker() as session, session.begin():
        for part in HISTORY_SQL.split(";"):
            if part.strip():
                await session.execute(text(part), {"leads": HISTORY_LEADS, "per_lead": 3, "partners": ROUTED_PARTNERS})
    await measure(f"{HISTORY_LEADS * 3} offers, 20 % with preferences, round robin", policy)
    await measure("the same, weighted", weighted)
    return s


async def offer_step(st: Stack, calls: int = 200) -> Section:
    """The journey's routing step (`leads.offer`: the lead locked, the routing lock, the rule's
    query, the offer written, the partner's stats, the audit row) called directly, one at a time,
    over the routed partners and the history `routing_p95` left: wall and CPU ms per call and the
    statements one call sends (bench/steps.py's measure for the other journeys' steps)."""
    from bench.steps import _counted, _timed
    from journeys.leads.activities import LeadActivities
    from journeys.leads.domain import OfferInput
    from journeys.leads.models import Lead

    rows = [
        {**row, "source": "bench-step", "external_id": f"bench-step-{i}"} for i, row in enumerate(lead_rows(calls + 2))
    ]
    async with st.sessionmaker() as session, session.begin():
        session.add_all(Lead(**row) for row in rows)
    version = await harness.policy_version(st)
    acts = LeadActivities(
        st.sessionmaker, link_secret=st.settings.link_secret, public_base_url="http://bench.test", ops_email="o@b.test"
    )
    leads = iter(rows)

    async def offer(i: int) -> None:
        row = next(leads)
        inp = OfferInput(
            idempotency_key=f"bench-offer-{row['id']}",
            lead_id=str(row["id"]),
            offer_no=1,
            excluded=[],
            policy_version=version,
            at=datetime.now(UTC),
        )
        if not (await acts.offer(inp)).offers:
            raise RuntimeError(f"lead {row['id']} found nobody to offer it to")

    sent, stop = _counted()
    try:
        await offer(0)
        statements = len(sent)
    finally:
        stop()
    wall, cpu = await _timed(calls, offer)
    s = Section(f"leads: the routing step alone ({calls} calls, one at a time)")
    s.add("leads.offer wall / CPU ms per call", f"{wall:.2f} / {cpu:.2f}   ({statements} statements)")
    return s


async def run(st: Stack, n: int) -> list[Section]:
    from sqlalchemy import func, select

    from api.journeys import launch_start
    from journeys.leads import starts
    from journeys.leads.domain import JOURNEY, LeadInput, LeadState
    from journeys.leads.models import Lead
    from worker.main import build_worker

    sections = [await routing_p95(st), await offer_step(st)]
    version = await harness.policy_version(st)  # pinned, as the API pins it
    task_queue = f"bench-leads-{uuid.uuid4().hex[:8]}"
    rows = []
    for row in lead_rows(n):
        inp = LeadInput(
            lead_id=str(row["id"]),
            company=row["company"],
            country=row["country"],
            product_category=row["product_category"],
            source=row["source"],
            policy_version=version,
        )
        start = {"start_input": inp.model_dump(mode="json"), "task_queue": task_queue}
        rows.append({**row, "policy_version": version, **start})
    async with st.sessionmaker() as session, session.begin():
        leads = [Lead(**row) for row in rows]
        session.add_all(leads)

    async def start(lead: Lead):
        """As the API starts it (`journeys.leads.service`): search attributes, summary, bounded retries."""
        await launch_start(st.client, starts.pending_start(lead))
        return st.client.get_workflow_handle(f"{JOURNEY}-{lead.id}")

    async def waiting() -> int:  # one poll for all (a poll per lead would take the pool's connections)
        async with st.sessionmaker() as session:
            new = (Lead.state == LeadState.new.value) & (Lead.source == "bench")
            return await session.scalar(select(func.count()).select_from(Lead).where(new)) or 0

    # the baseline just before the journeys, and again just after them (compare)
    bracket = await harness.baseline_first(st.client, harness.Shape(BUSINESS_STEPS), n)
    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        t0, cpu0 = time.perf_counter(), time.process_time()
        handles = await harness.bounded(leads, start, 50)
        said = n
        while left := await waiting():
            if said - left >= max(1, n // 10):  # every tenth
                said = left
                harness.log(f"leads: {n - left}/{n} offered ({time.perf_counter() - t0:.1f}s)")
            await asyncio.sleep(0.1)  # 0.5 s added 0.25 s on average to 4-6 s of leads
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        real = {"wall": wall, "cpu": cpu, **await harness.history_stats(handles[:50])}
        for handle in handles:
            await handle.terminate("bench over")
    s = Section(f"leads: {n} leads imported at {ROUTED_PARTNERS} partners and started")
    s.add("until every one is offered", f"{wall:.1f} s ({n / wall:.0f} leads/s)")
    sections.append(s)
    sections.append(await harness.compare(st.client, "leads", n, real, BUSINESS_STEPS, first=bracket))
    return sections
