"""Partner health at program scale.

`run` (`make bench`, N/10 partners): the `evaluate` activity as the worker builds it (every
journey's signal reader from the registry, the score, its row) over N partners, twice: the first
evaluation records each score, the second finds nothing changed and writes nothing. Evaluations
per second of each pass: how many partners one worker can keep watched at a given
`health.evaluate_seconds`. Then the journey's cost: 4N fresh partners' `health-{id}` workflows
started as the platform starts them, each timed until its first round is done (it waits for its
next evaluation), against the bare-Temporal baselines (`journey_cost`).

`latency` (`python -m bench.health --partners 10000 --rate 20`): the mechanism itself, one
`health-{id}` entity workflow per partner on one `camlights worker` process: N partners, all
watched, then events arriving at `rate` a second (a certification lapsing for a random partner,
written as the cert journey writes it). Each event is then either left to the periodic evaluation
(the default), followed by the bench's own `refresh` signal (`--refresh`), or published as the cert
journey publishes `certification.lapsed` (`--published`: the worker's `events.publish` code, whose
refresh of `health-{id}` comes from the platform, activities/webhooks.py). Per event: the time
until the partner's health row reflects it (p50/p95/max, target p95 < 60 s); the mechanism's cost:
evaluations a second, the worker's CPU and RSS."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import harness
from bench.harness import Section, Stack
from domain.policy import ProgramPolicy


async def run(st: Stack, n: int) -> list[Section]:
    from core import registry
    from journeys.health.activities import HealthActivities
    from journeys.health.domain import EvaluateInput
    from store import repo

    journeys = min(1000, max(50, 4 * n))
    fresh = await harness.seed_partners(st, n + journeys)
    partners, fresh = fresh[:n], fresh[n:]
    async with st.sessionmaker() as session:
        version = (await repo.current_policy(session)).version
    acts = HealthActivities(st.sessionmaker, registry.HEALTH_SIGNALS)
    section = Section("health", [("partners", str(n))])
    for label in ("first evaluation (records the score)", "again, unchanged (writes nothing)"):
        run_id = uuid.uuid4().hex[:8]

        async def one(p: dict, run_id: str = run_id):
            key = f"bench:{run_id}:{p['id']}"
            return await acts.evaluate(
                EvaluateInput(idempotency_key=key, partner_id=str(p["id"]), policy_version=version)
            )

        t0 = time.perf_counter()
        await harness.bounded(partners, one, concurrency=20)
        wall = time.perf_counter() - t0
        section.add(label, f"{n / wall:.0f} evaluations/s ({wall:.1f}s)")
    return [section, await journey_cost(st, fresh)]


# Business steps of a first round: evaluate and record the score, publish partner.health_changed;
# then, as the partner's score and activity call for them, each record written (an early-warning
# episode, a re-engagement step: a seeded partner has done nothing for months), each email (the
# alert, the re-engagement email) and each partner.at_risk published (one per episode).
STEPS = 2
EVALUATE_SECONDS_MAX = 3600.0  # the policy's bar (`HealthPolicy.evaluate_seconds`)


async def first_round(handle) -> None:
    """Until the journey waits for its next evaluation (its first timer): the evaluation, its
    event and any alert are done."""
    from temporalio.api.enums.v1 import EventType

    started = EventType.EVENT_TYPE_TIMER_STARTED
    await harness.until_event(handle, lambda e: e.event_type == started, "waiting for its next evaluation")


async def journey_cost(st: Stack, partners: list[dict]) -> Section:
    """The health journeys of `partners` (fresh: never evaluated), started at once as the API
    starts one with every partner, each until its first round is done (`first_round`); then
    terminated (a health journey never ends) and compared with the baselines."""
    from sqlalchemy import func, select

    from journeys.health.domain import JOURNEY, HealthInput
    from journeys.health.models import HealthEpisode, HealthReengagement, HealthScore
    from worker.main import build_worker

    ids = [p["id"] for p in partners]
    task_queue = f"bench-health-{uuid.uuid4().hex[:8]}"
    # The policy's own cadence (30 s) is shorter than this run: a journey started early would
    # evaluate a second time while the last ones start (as `harness.bench_policy` keeps every
    # other journey's deadlines beyond a run), and its second round be counted as its first.
    _, version = await save_policy_with(st, evaluate_seconds=EVALUATE_SECONDS_MAX)

    async def journey(p: dict):
        inp = HealthInput(
            partner_id=str(p["id"]), partner_name=p["name"], coverage=harness.coverage(p), policy_version=version
        )
        # as the API starts it with the partner (`api.journeys.with_every_partner`: state "started")
        handle = await harness.launch(st.client, JOURNEY, p["id"], inp, task_queue, "started")
        await first_round(handle)
        return handle

    st.smtp.clear()
    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        wall, handles, cpu = await harness.drive("health", partners, journey)
        real = {"wall": wall, "cpu": cpu, **await harness.history_stats(handles[:50])}
        for handle in handles:
            await handle.terminate("bench over")
    async with st.sessionmaker() as session:
        scored = await session.scalar(
            select(func.count(func.distinct(HealthScore.partner_id))).where(HealthScore.partner_id.in_(ids))
        )
        episodes = await session.scalar(select(func.count()).where(HealthEpisode.partner_id.in_(ids))) or 0
        reengaged = await session.scalar(select(func.count()).where(HealthReengagement.partner_id.in_(ids))) or 0
    emails = st.smtp.counted
    n = len(partners) - 1  # the warm-up is not timed
    steps = round(STEPS + (2 * episodes + reengaged + emails) / len(partners))
    return await harness.compare(
        st.client,
        "health",
        n,
        real,
        steps,
        notes=[
            f"{scored} of {len(partners)} partners scored; {episodes} early-warning episodes opened, "
            f"{reengaged} re-engagement steps recorded, {emails} emails sent"
        ],
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _evaluated(st: Stack) -> int:
    from sqlalchemy import func, select

    from journeys.health.models import HealthScore

    async with st.sessionmaker() as session:
        return int(await session.scalar(select(func.count(func.distinct(HealthScore.partner_id)))) or 0)


async def publish_lapse(st: Stack, hooks: object, i: int, partner_id: str, cert_id: object, at: datetime) -> None:
    """`certification.lapsed` through the worker's publish code (`hooks`: its WebhookActivities;
    its client: the bench's)."""
    from temporalio.testing import ActivityEnvironment

    from domain.webhooks import EventInput
    from journeys.cert.events import CertEvent

    event = CertEvent(
        certification_id=str(cert_id), partner_id=partner_id, category="network", expires_at=at, state="lapsed"
    )
    inp = EventInput(
        idempotency_key=f"bench:{i}:{cert_id}",
        type="certification.lapsed",
        partner_id=partner_id,
        occurred_at=at,
        data=event.model_dump(mode="json"),
    )
    await ActivityEnvironment(client=st.client).run(hooks.publish, inp)  # type: ignore[attr-defined]


async def lapse_cert(st: Stack, partner_id: object, i: int, at: datetime) -> object:
    """A certification of the partner, lapsed (written as the cert journey writes it); its id."""
    from sqlalchemy import insert

    from journeys.cert.models import Certification

    async with st.sessionmaker() as session, session.begin():
        return await session.scalar(
            insert(Certification)
            .values(
                partner_id=partner_id,
                person_name="Bench",
                person_email=f"b{i}@bench.test",
                track=f"Track {i}",
                product_category="network",
                issued_at=at - timedelta(days=400),
                expires_at=at - timedelta(days=35),
                state="lapsed",
                restricted=True,
                period=1,
                created_by="bench",
            )
            .returning(Certification.id)
        )


async def reflected(st: Stack, rows0: int, events: list[tuple[str, datetime, str]], seen: dict[int, float]) -> None:
    """Note in `seen` (event index: seconds) each event (partner, when, its certification's signal
    key) that a health row written after `rows0` lists now: the first such row counts."""
    from sqlalchemy import select

    from journeys.health.models import HealthScore

    async with st.sessionmaker() as session:
        got = (
            await session.execute(
                select(HealthScore.partner_id, HealthScore.at, HealthScore.contributions)
                .where(HealthScore.id > rows0)
                .order_by(HealthScore.id)
            )
        ).all()
    by_partner: dict[str, list[tuple[datetime, set[str]]]] = {}
    for pid, at, contributions in got:
        by_partner.setdefault(str(pid), []).append((at, {c["key"] for c in contributions}))
    for k, (pid, at, key) in enumerate(events):
        if k not in seen:  # the first row that counts the event's certification
            first = next((t for t, keys in by_partner.get(pid, []) if key in keys), None)
            if first is not None:  # a row's time is its transaction's start: it may have read the
                seen[k] = max(0.0, (first - at).total_seconds())  # event a moment after it began


async def shown(
    st: Stack, rows0: int, events: list[tuple[str, datetime, str]], within: float, every: float = 2.0
) -> dict[int, float]:
    """Every `every` seconds for at most `within`, until each event shows (`reflected`)."""
    deadline, seen = time.perf_counter() + within, {}
    while len(seen) < len(events) and time.perf_counter() < deadline:
        await asyncio.sleep(every)
        await reflected(st, rows0, events, seen)
    return seen


async def start_entities(st: Stack, n: int, version: int, policy) -> int:
    """Start every partner's journeys the policy watches (`health-{id}` with `health.watch`), as
    enrolment starts them, and wait until each partner has its first evaluation recorded."""
    from sqlalchemy import select

    from api.journeys import StartUncertain, launch, with_every_partner
    from domain.policy import VersionedPolicy
    from store.models import Partner

    t0 = time.perf_counter()
    async with st.sessionmaker() as session:
        rows = (await session.scalars(select(Partner))).all()
        records = [
            r
            for p in rows
            for r in with_every_partner(p, st.settings.task_queue, VersionedPolicy(version=version, policy=policy))
        ]

    async def start(record) -> None:
        for _ in range(10):  # idempotent by workflow id: a start without an answer is tried again
            try:
                return await launch(st.client, record)
            except StartUncertain:
                await asyncio.sleep(2)
        raise RuntimeError(f"{record.workflow_id} not started")

    await harness.bounded(records, start, concurrency=10)
    harness.log(f"health: {n} workflows started in {time.perf_counter() - t0:.0f}s; waiting for every first evaluation")
    while (done := await _evaluated(st)) < n:
        harness.log(f"health: {done}/{n} evaluated")
        await asyncio.sleep(5)
    return len(records)


async def save_policy_with(st: Stack, **health: object) -> tuple[ProgramPolicy, int]:
    """Store the current policy with `health`'s fields set, nothing else changed: the policy and
    its version."""
    from store import repo

    async with st.sessionmaker() as session:
        current = await repo.current_policy(session)
        section = current.policy.health.model_copy(update=health)
        policy = current.policy.model_copy(update={"health": section})
        version = await repo.save_policy(session, policy, created_by="bench")
        await session.commit()
    return policy, version


async def save_health_policy(st: Stack, **health: object) -> tuple[ProgramPolicy, int]:
    """The current policy with health watched, no velocity goal and `health`'s fields set (the
    health benches' program), stored: the policy and its version."""
    return await save_policy_with(st, **{"watch": True, "velocity_goal": 0, **health})


async def latency(
    st: Stack,
    n: int,
    *,
    rate: float = 20.0,
    seconds: float = 60.0,
    evaluate_seconds: float = 30.0,
    refresh: bool = False,
    published: bool = False,
) -> list[Section]:
    from sqlalchemy import select

    from activities.webhooks import WebhookActivities
    from core.registry import refreshes
    from journeys.health.domain import REFRESH
    from journeys.health.models import HealthScore

    hooks = WebhookActivities(st.sessionmaker, refreshes=refreshes())  # as the worker builds it

    policy, version = await save_health_policy(st, evaluate_seconds=evaluate_seconds)
    partners = await harness.seed_partners(st, n)
    worker = harness.start_worker(st)
    try:
        t0 = time.perf_counter()
        started = await start_entities(st, n, version, policy)
        watched = time.perf_counter() - t0
        cpu0, wall0 = _cpu_seconds(worker.pid), time.perf_counter()
        async with st.sessionmaker() as session:
            rows0 = int(await session.scalar(select(HealthScore.id).order_by(HealthScore.id.desc()).limit(1)) or 0)
        events: list[tuple[str, datetime, str]] = []  # partner, when, the key of its signal
        signals: list[asyncio.Future] = []
        rnd = random.Random(7)
        for i in range(int(rate * seconds)):
            due = wall0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            p = rnd.choice(partners)
            at = datetime.now(UTC)
            cert_id = await lapse_cert(st, p["id"], i, at)
            events.append((str(p["id"]), at, f"cert:{cert_id}"))
            # right after the commit (kept: a task nobody holds may be lost)
            if published:  # as the journey does: the platform's publish refreshes health
                signals.append(asyncio.ensure_future(publish_lapse(st, hooks, i, str(p["id"]), cert_id, at)))
            elif refresh:  # the bench's own signal
                signals.append(
                    asyncio.ensure_future(st.client.get_workflow_handle(f"health-{p['id']}").signal(REFRESH))
                )
        await asyncio.gather(*signals)
        harness.log(f"health: {len(events)} events sent; waiting for them to show")
        seen = await shown(st, rows0, events, 180.0 if refresh or published else max(180.0, 4 * evaluate_seconds))
        wall = time.perf_counter() - wall0
        cpu = _cpu_seconds(worker.pid) - cpu0
        lat = list(seen.values())
        load = os.getloadavg()[0]
        s = Section(
            f"health latency: {n} partners, events {rate:g}/s for {seconds:g}s, evaluate every {evaluate_seconds:g}s"
            + (", published (refresh from events.publish)" if published else "")
            + (", refresh signal on each event" if refresh and not published else ""),
            [
                ("partners watched (health workflows)", f"{started}"),
                ("start + first evaluation of all", f"{watched:.0f}s"),
            ],
        )
        s.add("events reflected", f"{len(seen)} of {len(events)}")
        if lat:
            s.add("time until health reflects an event", harness.latency(lat))
        s.add("worker CPU (one process)", f"{cpu / wall:.2f} cores over {wall:.0f}s; RSS {worker.rss_mib():.0f} MiB")
        s.add(
            "evaluations needed (N / evaluate_seconds + refreshes)",
            f"{n / evaluate_seconds + (rate if refresh or published else 0):.0f}/s",
        )
        s.add("load average (1 min) at the end", f"{load:.1f}")
        return [s]
    finally:
        worker.stop()


async def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--partners", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--evaluate-seconds", type=float, default=30.0)
    ap.add_argument("--refresh", action="store_true", help="the bench sends the refresh signal with each event")
    ap.add_argument(
        "--published", action="store_true", help="publish each event as the journey does (the platform refreshes)"
    )
    ap.add_argument("--sweep", action="store_true", help="through the health sweep (bench/health_sweep.py)")
    ap.add_argument("--sweep-seconds", type=float, default=5.0, help="with --sweep: health.sweep_seconds")
    ap.add_argument("--batch", type=int, default=500, help="with --sweep: health.sweep_batch")
    ap.add_argument(
        "--entities",
        type=float,
        metavar="EVALUATE_SECONDS",
        help="with --sweep: also run every partner's health-{id} workflow, evaluating every EVALUATE_SECONDS",
    )
    a = vars(ap.parse_args())
    sweep = {"sweep_seconds": a.pop("sweep_seconds"), "batch": a.pop("batch"), "entities": a.pop("entities")}
    async with harness.stack(harness.bench_policy()) as st:
        if a.pop("sweep"):
            from bench.health_sweep import sweep_latency

            sections = await sweep_latency(st, a.pop("partners"), rate=a["rate"], seconds=a["seconds"], **sweep)
        else:
            sections = await latency(st, a.pop("partners"), **a)
        for section in sections:
            print(section.render())


if __name__ == "__main__":
    asyncio.run(_main())
