"""Partner health through the sweep (journeys/health/sweep.py), at program scale.

`python -m bench.health --sweep --partners 10000 --rate 20 --seconds 60`: N partners, each with a
recorded score (written directly: the sweep's latency path needs no `health-{id}` entity
workflow, so none is started; their own cadence is a cost of its own, N / evaluate_seconds
evaluations a second, reported beside), one `camlights worker` process that starts `health-sweep`
through the policy hook, and events at `rate` a second: a certification lapsing for a random
partner, written as the cert journey writes it and published through the worker's publish code
(`events.publish`, activities/webhooks.py: with the sweep on it signals nothing). Per event: the
time until the partner's health row reflects it (p50/p95/max, target p95 < 60 s). The sweep's
cost: its passes' batch sizes, evaluations and activities a second, history events per event,
the worker's CPU."""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

from bench import harness
from bench.harness import Section, Stack
from bench.health import _cpu_seconds, lapse_cert, publish_lapse, save_health_policy, shown


async def _seed_scores(st: Stack, partners: list[dict], version: int) -> None:
    """Each partner's score as its first evaluation records it (100: a new partner, no signal)."""
    from sqlalchemy import insert

    from journeys.health.domain import BASELINE, Contribution
    from journeys.health.models import HealthScore

    base = [Contribution(key="baseline", kind="baseline", points=BASELINE, what="baseline").model_dump()]
    rows = [
        {
            "idempotency_key": f"bench-seed:{p['id']}",
            "partner_id": p["id"],
            "score": BASELINE,
            "band": "healthy",
            "contributions": base,
            "changes": [],
            "policy_version": version,
            "at": datetime.now(UTC) - timedelta(hours=1),
        }
        for p in partners
    ]
    for i in range(0, len(rows), 2000):
        async with st.sessionmaker() as session, session.begin():
            await session.execute(insert(HealthScore), rows[i : i + 2000])


async def _sweep_passes(st: Stack) -> tuple[list[int], int, int]:
    """Partners per pass of `health-sweep` (every run), its history events, its activities."""
    from temporalio.api.enums.v1 import EventType

    from journeys.health.domain import SWEEP, SweepResult

    sizes: list[int] = []
    events = activities = 0
    run_id: str | None = None
    handle = st.client.get_workflow_handle(SWEEP)
    desc = await handle.describe()
    first_run = desc.raw_description.workflow_execution_info.first_run_id or desc.run_id
    run_id = first_run
    seen: set[str] = set()
    while run_id and run_id not in seen:
        seen.add(run_id)
        history = await st.client.get_workflow_handle(SWEEP, run_id=run_id).fetch_history()
        nxt = None
        for e in history.events:
            events += 1
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                activities += 1
                (res,) = await st.client.data_converter.decode(
                    e.activity_task_completed_event_attributes.result.payloads, [SweepResult]
                )
                sizes.append(res.partners)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                nxt = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        run_id = nxt
    return sizes, events, activities


async def sweep_latency(
    st: Stack,
    n: int,
    *,
    rate: float = 20.0,
    seconds: float = 60.0,
    sweep_seconds: float = 5.0,
    batch: int = 500,
    entities: float | None = None,
) -> list[Section]:
    """`entities`: also start every partner's `health-{id}` entity workflow with that
    `evaluate_seconds` (their first evaluations record the scores instead of the seed), so the
    events are measured with the entities' own cadence running beside the sweep."""
    from sqlalchemy import select

    from activities.webhooks import WebhookActivities
    from core.registry import refreshes
    from journeys.health.domain import SWEEP
    from journeys.health.models import HealthScore

    hooks = WebhookActivities(st.sessionmaker, refreshes=refreshes())  # as the worker builds it
    evaluate_seconds = entities or 30.0
    policy, version = await save_health_policy(
        st, evaluate_seconds=evaluate_seconds, sweep_seconds=sweep_seconds, sweep_batch=batch
    )
    t0 = time.perf_counter()
    partners = await harness.seed_partners(st, n)
    if not entities:
        await _seed_scores(st, partners, version)
    harness.log(f"health sweep: {n} partners (and scores: {not entities}) seeded in {time.perf_counter() - t0:.0f}s")
    worker = harness.start_worker(st)
    try:
        if entities:
            from bench.health import start_entities

            t1 = time.perf_counter()
            await start_entities(st, n, version, policy)
            harness.log(f"health sweep: {n} entity workflows started and evaluated in {time.perf_counter() - t1:.0f}s")
            # The entities' first passes go on after their rows are written (their events, the alert
            # rule, the timer): measure from the sweep's next completed pass, once that backlog is gone.
            _, _, before = await _sweep_passes(st)
            while (await _sweep_passes(st))[2] <= before:
                await asyncio.sleep(2)
            harness.log(f"health sweep: a sweep pass completed {time.perf_counter() - t1:.0f}s after the start")

        async def running() -> bool:
            try:
                return (await st.client.get_workflow_handle(SWEEP).describe()).status is not None
            except Exception:  # noqa: BLE001 - not started yet
                return False

        while not await running():  # the worker's policy hook starts it
            await asyncio.sleep(0.5)
        cpu0, wall0 = _cpu_seconds(worker.pid), time.perf_counter()
        sizes0, history0, acts0 = await _sweep_passes(st)
        async with st.sessionmaker() as session:
            rows0 = int(await session.scalar(select(HealthScore.id).order_by(HealthScore.id.desc()).limit(1)) or 0)
        events: list[tuple[str, datetime, str]] = []
        pending: list[asyncio.Future] = []
        rnd = random.Random(7)

        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, wall0 + i / rate - time.perf_counter()))
            p = rnd.choice(partners)
            at = datetime.now(UTC)
            cert_id = await lapse_cert(st, p["id"], i, at)
            events.append((str(p["id"]), at, f"cert:{cert_id}"))
            pending.append(asyncio.ensure_future(publish_lapse(st, hooks, i, str(p["id"]), cert_id, at)))
        await asyncio.gather(*pending)
        sent = time.perf_counter() - wall0
        harness.log(f"health sweep: {len(events)} events published in {sent:.0f}s; waiting for them to show")
        seen = await shown(st, rows0, events, 180.0, every=1.0)
        wall = time.perf_counter() - wall0
        cpu = _cpu_seconds(worker.pid) - cpu0
        load = os.getloadavg()
        while (await st.client.get_workflow_handle(SWEEP).describe()).raw_description.pending_activities:
            await asyncio.sleep(0.5)  # the pass under way: counted once it is over
        sizes, history, acts = await _sweep_passes(st)
        sizes, history, acts = sizes[len(sizes0) :], history - history0, acts - acts0
        busy = [s for s in sizes if s]
        evaluated = sum(sizes)
        s = Section(
            f"health sweep latency: {n} partners, events {rate:g}/s for {seconds:g}s published through "
            f"events.publish, sweep every {sweep_seconds:g}s (batch {batch}); "
            + (f"{n} entity workflows evaluating every {entities:g}s" if entities else "no entity workflows started"),
            [("partners" + ("" if entities else " (scores seeded)"), f"{n}")],
        )
        s.add("events reflected", f"{len(seen)} of {len(events)}")
        if seen:
            s.add("time until health reflects an event", harness.latency(list(seen.values())))
        if busy:
            s.add(
                "sweep passes (partners per pass)",
                f"{len(sizes)} passes, {len(busy)} with partners: p50 {harness.percentile(busy, 50):.0f}, "
                f"max {max(busy)}",
            )
        rows = [
            ("evaluations", f"{evaluated} ({evaluated / wall:.1f}/s)"),
            ("sweep activities", f"{acts} ({acts / wall:.2f}/s)"),
            ("sweep history events per published event", f"{history / max(1, len(events)):.2f} ({history} in all)"),
            ("worker CPU (one process)", f"{cpu / wall:.2f} cores over {wall:.0f}s; RSS {worker.rss_mib():.0f} MiB"),
            (
                "entity cadence" + ("" if entities else " (not started here)"),
                f"{n / evaluate_seconds:.1f} evaluations/s at {evaluate_seconds:g}s",
            ),
            ("load average (1/5/15 min) at the end", "/".join(f"{x:.1f}" for x in load)),
        ]
        for label, value in rows:
            s.add(label, value)
        return [s]
    finally:
        worker.stop()
