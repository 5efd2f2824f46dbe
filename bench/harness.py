"""What every benchmark shares: the embedded stack on loopback in a temporary directory, a
bare-Temporal baseline workflow of any shape (activities, signals, updates), history statistics,
percentiles and the printed report.

A journey's benchmark module (`bench/<journey>.py`) defines `async def run(stack, n) -> Section`:
it runs the baseline of the journey's business steps (`baseline_first`), drives the real journey,
reads the shape of its histories (`history_stats`) and compares (`compare`: the baseline again,
its rate over both runs, which bracket the journeys; and the same-shape baseline).
Adding a journey to `make bench` is one such module and one line in `bench/__main__.py`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

BASELINE_TIMEOUT = timedelta(seconds=30)
BASELINE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)
BASELINE_SIGNAL = "bench_signal"
BASELINE_UPDATE = "bench_update"
BASELINES = True  # python -m bench --no-baselines: the journeys' costs only


# --------------------------------------------------------------------------- printing


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latency(values: Sequence[float]) -> str:
    """Seconds as 'p50 .. ms  p95 .. ms  max .. ms (n)'."""
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 50):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms  max {max(ms):7.1f} ms  (n={len(ms)})"


def spread(values: Sequence[float]) -> str:
    lo, hi, mean = min(values), max(values), statistics.fmean(values)
    return f"{mean:.1f}" if lo == hi else f"{mean:.1f} (min {lo:g}, max {hi:g})"


@dataclass
class Section:
    """One block of the report: a title and (label, value) rows."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, value: Any) -> None:
        self.rows.append((label, str(value)))

    def render(self) -> str:
        width = max((len(label) for label, _ in self.rows), default=0)
        lines = [f"== {self.title} =="] + [f"{label.ljust(width)}  {value}" for label, value in self.rows]
        return "\n".join(lines)


class Progress:
    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.every = max(1, total // 4)
        self.t0 = time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        if self.done % self.every == 0 or self.done == self.total:
            log(f"  {self.label}: {self.done}/{self.total} ({time.perf_counter() - self.t0:.1f}s)")


async def bounded(items: Iterable[Any], fn: Callable[[Any], Awaitable[Any]], concurrency: int) -> list[Any]:
    """`fn` over every item, at most `concurrency` at once, results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item):
        async with gate:
            return await fn(item)

    return await asyncio.gather(*(one(i) for i in items))


# --------------------------------------------------------------------------- the baseline


class NoopInput(BaseModel):
    journey_id: str
    step: int


class NoopResult(BaseModel):
    applied: bool


class BaselineInput(BaseModel):
    activities: int
    signals: int = 0
    updates: int = 0
    local_activities: int = 0  # after the activities: no-op local activities (the journeys' local steps)


class BaselineResult(BaseModel):
    activities: int
    signals: int


class BaselineMessage(BaseModel):
    key: str


@dataclass
class Shape:
    """What one journey did, on average: activities scheduled, signals and updates received, local
    activities run (markers of `core_local_activity`)."""

    activities: int
    signals: int = 0
    updates: int = 0
    local_activities: int = 0


async def run_baseline(client, shape: Shape, n: int, concurrency: int = 200) -> dict:
    """`n` baseline workflows of `shape` on a fresh task queue with an in-process worker,
    after one untimed warm-up; timed from the first start to the last answer."""
    from temporalio.worker import Worker

    from bench.baseline import BaselineWorkflow, noop

    task_queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    progress = Progress("baseline", n)

    async def journey(i: int):
        handle = await client.start_workflow(
            BaselineWorkflow.run,
            BaselineInput(
                activities=shape.activities,
                signals=shape.signals,
                updates=shape.updates,
                local_activities=shape.local_activities,
            ),
            id=f"bench-baseline-{i}-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        for s in range(shape.signals):
            await handle.signal(BASELINE_SIGNAL, BaselineMessage(key=f"s{s}"))
        for u in range(shape.updates):
            await handle.execute_update(BASELINE_UPDATE, BaselineMessage(key=f"u{u}"), result_type=BaselineResult)
        await handle.result()
        if i >= 0:
            progress.tick()
        return handle

    async with Worker(client, task_queue=task_queue, workflows=[BaselineWorkflow], activities=[noop]):
        await journey(-1)
        log(
            f"baseline: {n} workflows, {shape.activities} activities, {shape.local_activities} local activities, "
            f"{shape.signals} signals, {shape.updates} updates"
        )
        progress.t0 = t0 = time.perf_counter()
        cpu0 = time.process_time()
        handles = await bounded(range(n), journey, concurrency)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stats = await history_stats(handles[: min(n, 50)])
    return {"wall": wall, "cpu": cpu, **stats}


@dataclass
class Bracket:
    """A journey's baseline run just before the journey itself (`baseline_first`). `compare` runs it
    again just after and counts both: the machine's drift over the minute between the two (a
    shared 2-core machine's rate moved by up to half between runs a minute apart, session 54) then
    weighs on the baseline as on the journey, instead of on whichever ran second."""

    shape: Shape
    result: dict


async def baseline_first(client, shape: Shape, n: int) -> Bracket | None:
    """The business-step baseline of `shape` (one activity per business step, the journey's signals
    and updates), over `n` workflows, run before the journey; None with --no-baselines."""
    if not BASELINES:
        return None
    return Bracket(shape, await run_baseline(client, shape, n))


def _both(first: dict, second: dict) -> dict:
    """Two baseline runs of the same `n` as one of `2n`: wall and CPU halved from the sum (so the
    rate is over both), the histories of both."""
    both = {key: first[key] + second[key] for key in first}
    both["wall"], both["cpu"] = both["wall"] / 2, both["cpu"] / 2
    return both


async def history_stats(handles) -> dict:
    """Events, activities scheduled, signals and updates accepted per history (first run)."""
    from temporalio.api.enums.v1 import EventType

    histories = await asyncio.gather(*(h.fetch_history() for h in handles))

    def count(hist, kind) -> int:
        return sum(1 for e in hist.events if e.event_type == kind)

    return {
        "events": [len(h.events) for h in histories],
        "activities": [count(h, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) for h in histories],
        "signals": [count(h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) for h in histories],
        "updates": [count(h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) for h in histories],
        "markers": [count(h, EventType.EVENT_TYPE_MARKER_RECORDED) for h in histories],
        "local": [
            sum(
                1
                for e in h.events
                if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            )
            for h in histories
        ],
        "upserts": [count(h, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES) for h in histories],
        "tasks": [count(h, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) for h in histories],
    }


def shape_of(stats: dict) -> Shape:
    return Shape(
        activities=round(statistics.fmean(stats["activities"])),
        signals=round(statistics.fmean(stats["signals"])),
        updates=round(statistics.fmean(stats["updates"])),
        local_activities=round(statistics.fmean(stats["local"])),
    )


async def compare(
    client,
    title: str,
    n: int,
    real: dict,
    business_steps: int,
    notes: Sequence[str] = (),
    first: Bracket | None = None,
) -> Section:
    """The real journeys against two bare-Temporal baselines with the same messages, both over
    `n` workflows in the same run: one activity per business step (the target's baseline: what
    the process needs) and as many activities and local activities as the journey ran (what its steps'
    own work costs, DB and SMTP included). With `first` (`baseline_first`, run just before the
    journeys) the business-step baseline runs again now and its rate is over both runs, which
    bracket the journeys; a `first` of another shape than the journey had is a benchmark's error."""
    if not BASELINES:
        s = Section(f"{title}: journey cost (no baselines)")
        s.add("real journeys/s", f"{n / real['wall']:.2f}   ({real['wall']:.2f}s)")
        s.add("activities, history events / journey", f"{spread(real['activities'])}, {spread(real['events'])}")
        return s
    shape = shape_of(real)
    wanted = Shape(business_steps, shape.signals, shape.updates)
    if first is not None and first.shape != wanted:
        raise RuntimeError(f"{title}: the baseline run first was {first.shape}, the journeys were {wanted}")
    steps = await run_baseline(client, wanted, n)
    bracket = ""
    if first is not None:
        before, after = n / first.result["wall"], n / steps["wall"]
        bracket = f"; before / after the journeys {before:.2f} / {after:.2f}"
        steps = _both(first.result, steps)
    same = await run_baseline(client, shape, n)
    rate, steps_rate, same_rate = n / real["wall"], n / steps["wall"], n / same["wall"]
    s = Section(f"{title}: journey cost")
    s.add("journeys (N)", n)
    s.add("real journeys/s", f"{rate:.2f}   ({real['wall']:.2f}s)")
    s.add(
        "baseline journeys/s",
        f"{steps_rate:.2f}   ({steps['wall']:.2f}s; {business_steps} activities, one per business step{bracket})",
    )
    s.add("ratio real / baseline", f"{rate / steps_rate:.2f}   (target >= 0.8)")
    s.add(
        "same-shape baseline/s",
        f"{same_rate:.2f}   ({shape.activities} activities and {shape.local_activities} local ones as the journey: "
        f"real / it {rate / same_rate:.2f})",
    )
    if "cpu" in real:
        per = 1000 / n
        s.add(
            "process CPU ms / journey",
            f"real {real['cpu'] * per:.1f}, baseline {steps['cpu'] * per:.1f}, "
            f"same-shape {same['cpu'] * per:.1f} (worker and client, every thread)",
        )
    s.add("activities / journey", f"real {spread(real['activities'])}; business steps {business_steps}")
    s.add("signals, updates / journey", f"{spread(real['signals'])}, {spread(real['updates'])}")
    events, minimal = statistics.fmean(real["events"]), statistics.fmean(steps["events"])
    s.add("history events / journey", f"real {spread(real['events'])}, baseline {spread(steps['events'])}")
    s.add("events vs minimal process", f"{events / minimal:.2f}x   (target <= 1.2)")
    marks, upserts, tasks = (spread(real[k]) for k in ("markers", "upserts", "tasks"))
    s.add("markers, SA upserts, tasks", f"{marks}, {upserts}, {tasks}")
    for note in notes:
        s.add("note", note)
    return s


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """The embedded services of one benchmark run, and settings pointing at them."""

    tmp: Path
    pg: Any
    smtp: Any
    temporal: Any
    settings: Any
    client: Any = None
    engine: Any = None
    sessionmaker: Any = None

    def env(self) -> dict[str, str]:
        """The environment a worker or API subprocess needs to use this stack."""
        s = self.settings
        # Installed packages have their bytecode compiled (`pip install` writes .pyc); without it
        # a worker's sandbox compiles each workflow module's source again for every new run.
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {
            **environ,
            "ENVIRONMENT": "development",
            "DATABASE_URL": s.database_url,
            "TEMPORAL_ADDRESS": s.temporal_address,
            "TASK_QUEUE": s.task_queue,
            "SMTP_HOST": s.smtp_host,
            "SMTP_PORT": str(s.smtp_port),
            "OPS_EMAIL": s.ops_email,
            "PAYLOAD_KEYS": s.payload_keys or "",
            "LINK_SECRET": s.link_secret,
        }


@asynccontextmanager
async def stack(policy=None, temporal_config: tuple[str, ...] = ()):
    """PostgreSQL (fsync off), the SMTP sink and the Temporal dev server (in memory, headless) on
    loopback in a temporary directory, removed at the end; migrations applied; `policy` stored
    as the current version. Payloads are encrypted as in production."""
    os.environ["CAMLIGHTS_PG_FAST"] = "1"  # benchmark data need not survive a power cut
    from core.settings import Settings
    from core.temporal import connect
    from store import repo
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade
    from worker.services import Postgres, SmtpSinkProcess, TemporalDevServer, free_port

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="camlights-bench-"))
    pg = Postgres(tmp / "pg", port=free_port(), log_file=tmp / "postgres.log")
    temporal = TemporalDevServer(
        db_file=None, headless=True, port=free_port(), log_file=tmp / "temporal.log", dynamic_config=temporal_config
    )
    smtp = SmtpSinkProcess(tmp / "mail", log_file=tmp / "smtp.log")  # not in the worker's process
    started: list[Any] = []
    try:
        await asyncio.to_thread(pg.start)
        started.append(pg)
        await asyncio.to_thread(upgrade, pg.url)
        smtp.start()
        started.append(smtp)
        await asyncio.to_thread(temporal.start)
        started.append(temporal)
        key = base64.b64encode(os.urandom(32)).decode()
        settings = Settings(
            environment="development",
            database_url=pg.url,
            temporal_address=temporal.address,
            task_queue=f"bench-{uuid.uuid4().hex[:8]}",
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            ops_email="ops@bench.test",
            link_secret="bench-link-secret-" + uuid.uuid4().hex,
            payload_keys=f"bench:{key}",
            _env_file=None,
        )
        st = Stack(tmp=tmp, pg=pg, smtp=smtp, temporal=temporal, settings=settings)
        st.client = await connect(settings)
        st.engine = make_engine(settings.database_url, pool_size=20)
        st.sessionmaker = make_sessionmaker(st.engine)
        if policy is not None:
            async with st.sessionmaker() as session:
                await repo.save_policy(session, policy, created_by="bench")
                await session.commit()
        log(f"stack ready in {time.perf_counter() - t0:.1f}s (PostgreSQL :{pg.port}, Temporal {temporal.address})")
        try:
            yield st
        finally:
            await st.engine.dispose()
    finally:
        for svc in reversed(started):
            try:
                svc.stop()
            except Exception as err:  # noqa: BLE001 (best effort cleanup)
                log(f"stop failed: {err!r}")
        shutil.rmtree(tmp, ignore_errors=True)


def rss_mib(pid: int) -> float:
    """Resident set size of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def workflow_bytecode() -> int:
    """Write the .pyc of every workflow module (ours and the baseline's) when this process does
    not (`PYTHONDONTWRITEBYTECODE`, as this machine sets): the sandbox imports a workflow's module
    again for every new run, and without bytecode compiles its source each time, which an
    installed package (pip writes .pyc) never does. Subprocesses get the same (`Stack.env`).
    Returns how many were written."""
    import importlib.util
    import inspect
    import py_compile
    import sys

    from bench.baseline import BaselineWorkflow
    from core import registry

    if not sys.dont_write_bytecode:
        return 0
    written = 0
    for source in sorted({inspect.getfile(cls) for cls in [*registry.workflows(), BaselineWorkflow]}):
        cached = importlib.util.cache_from_source(source)
        if not os.path.exists(cached) or os.path.getmtime(cached) < os.path.getmtime(source):
            py_compile.compile(source, cfile=cached, doraise=True)
            written += 1
    return written


# --------------------------------------------------------------------------- real journeys


async def launch(client, journey: str, entity_id: object, start_input: BaseModel, task_queue: str, state: str):
    """Start a journey exactly as the API does (`api.journeys.launch`: search attributes, static
    summary and details, bounded retries) and return its handle."""
    from api.journeys import launch as api_launch
    from core import registry
    from domain.journeys import workflow_id
    from store.models import JourneyRecord

    wid = workflow_id(journey, entity_id)
    record = JourneyRecord(
        workflow_id=wid,
        journey=journey,
        state=state,
        task_queue=task_queue,
        workflow_type=registry.journey(journey).workflow.__name__,
        start_input=start_input.model_dump(mode="json"),
    )
    await api_launch(client, record)
    return client.get_workflow_handle(wid)


async def seed_partners(st: Stack, n: int, tier: str = "registered") -> list[dict]:
    """`n` partners of one tier (CAM tiers get the generator's CAMs), written with COPY."""
    from bench import seed

    prog = seed.generate(n, deals=0, certs=0, seed=int(time.time()), funds=False)
    covered = tier != "registered"
    for p in prog.partners:
        p["tier"], p["status"] = tier, "onboarding"
        p["cam_id"] = prog.cams[hash(p["id"]) % len(prog.cams)]["id"] if covered else None
        p["domain"] = f"{uuid.uuid4().hex[:10]}.bench.test"
    await asyncio.to_thread(seed.write, st.settings.database_url, prog)
    return prog.partners


async def policy_version(st: Stack) -> int:
    """The current policy version, which the API pins in every journey it starts (the journey then
    reads it from the worker's cache of stored versions, not from PostgreSQL)."""
    from store import repo

    async with st.sessionmaker() as session:
        return (await repo.current_policy(session)).version


def coverage(partner: dict):
    from domain.journeys import Coverage

    return Coverage(tier=partner["tier"], cam_id=str(partner["cam_id"]) if partner["cam_id"] else None)


async def until_event(handle, found: Callable[[Any], bool], what: str, timeout: float = 600) -> None:
    """Until the workflow's history has an event `found` accepts: a long poll of its history (a
    query instead, every 50 ms, was a workflow task on the worker each time: 50 journeys at once
    queried it up to 1,000 times a second). `what`: what the journey was waited for, for the error."""
    async with asyncio.timeout(timeout):
        async for event in handle.fetch_history_events(wait_new_event=True):
            if found(event):
                return
    raise RuntimeError(f"{handle.id} ended without {what}")


async def drive(label: str, items: Sequence[Any], one: Callable[[Any], Awaitable[Any]], concurrency: int = 200):
    """One untimed warm-up on items[0], then `one` over the rest; returns (wall seconds, results,
    CPU seconds of this process: the journeys' worker, every thread of it, and the driving client,
    steadier than a rate on a shared machine)."""
    t = time.perf_counter()
    await one(items[0])
    log(f"{label}: warm-up in {time.perf_counter() - t:.2f}s; {len(items) - 1} journeys")
    progress = Progress(label, len(items) - 1)

    async def ticked(item):
        out = await one(item)
        progress.tick()
        return out

    t0 = progress.t0 = time.perf_counter()
    cpu0 = time.process_time()
    results = await bounded(items[1:], ticked, concurrency)
    return time.perf_counter() - t0, results, time.process_time() - cpu0


def bench_policy():
    """The real policy shape with one-hour days: nothing falls due during a run, so journeys move
    only through what the benchmark sends them (the onboarding plan is the tests' fast_policy)."""
    from domain.enums import Tier
    from domain.policy import ProgramPolicy
    from journeys.onboarding.policy import MilestoneSpec, OnboardingPolicy

    every = list(Tier)
    cam_tiers, certified = [Tier.platinum, Tier.gold], [Tier.platinum, Tier.gold, Tier.silver]
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
                    key="first_certification", title="Earn a first certification", due_day=3, required_for=certified
                ),
                MilestoneSpec(
                    key="business_plan", title="Agree a joint business plan", due_day=3, required_for=cam_tiers
                ),
                MilestoneSpec(key="first_deal", title="Register a first deal", due_day=4, required_for=every),
            ],
        ),
    )


# --------------------------------------------------------------------------- processes


@dataclass
class Process:
    proc: Any
    port: int | None = None

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def stop(self, kill: bool = False) -> None:
        import signal as sig

        if self.proc.poll() is None:
            self.proc.send_signal(sig.SIGKILL if kill else sig.SIGTERM)
            try:
                self.proc.wait(30)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait(10)


def start_process(st: Stack, args: list[str], name: str, extra_env: dict[str, str] | None = None) -> Process:
    """`python <args>` with the stack's environment, output to `<tmp>/<name>.log`."""
    import subprocess
    import sys

    out = open(st.tmp / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
    env = {**st.env(), **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=out, stderr=out, start_new_session=True)
    return Process(proc)


def start_api(st: Stack, extra_env: dict[str, str] | None = None, name: str = "api") -> Process:
    """The real API (uvicorn, one process) on a free loopback port."""
    from worker.services import free_port, wait_for_port

    port = free_port()
    p = start_process(
        st,
        [
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        name,
        extra_env,
    )
    p.port = port
    wait_for_port("127.0.0.1", port, 60, p.proc, "API")
    return p


def start_worker(st: Stack, extra_env: dict[str, str] | None = None) -> Process:
    """`camlights worker` on the stack's task queue."""
    return start_process(st, ["-m", "worker.cli", "worker"], "worker", extra_env)


async def api_key(st: Stack, role: str, cam_id=None, partner_id=None) -> dict[str, str]:
    from domain.enums import Role
    from store.apikeys import create_api_key

    async with st.sessionmaker() as session, session.begin():
        _, secret = await create_api_key(session, role=Role(role), cam_id=cam_id, partner_id=partner_id)
    return {"Authorization": f"Bearer {secret}"}


# --------------------------------------------------------------------------- what a journey costs (issue 27)

# Filled by each journey benchmark (`measure_costs`), written by `python -m bench` to
# bench/journey_costs.json, which `camlights capacity` reads.
COSTS: dict[str, dict[str, float]] = {}
RATES: dict[str, float] = {}  # per-process rates measured outside the journeys (the API's)

# Temporal Cloud bills these history events as actions (a continue-as-new starts the next run;
# retries of an activity count again, from each ActivityTaskStarted's attempt).
_ACTION_EVENTS = (
    "WORKFLOW_EXECUTION_STARTED",
    "ACTIVITY_TASK_SCHEDULED",
    "TIMER_STARTED",
    "WORKFLOW_EXECUTION_SIGNALED",
    "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
    "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
    "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
    "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
    "WORKFLOW_PROPERTIES_MODIFIED",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
)


def history_costs(histories: Sequence[Any]) -> dict[str, float]:
    """Per history, on average: events, their bytes (serialized protobuf), Temporal actions,
    activities, local activities (their markers), workflow tasks and timers."""
    from temporalio.api.enums.v1 import EventType

    billed = {EventType.Value(f"EVENT_TYPE_{name}") for name in _ACTION_EVENTS}
    marker = EventType.EVENT_TYPE_MARKER_RECORDED
    started = EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    totals = dict.fromkeys(
        ("events", "history_bytes", "actions", "activities", "local_activities", "workflow_tasks", "timers"), 0.0
    )
    for h in histories:
        for e in h.events:
            totals["events"] += 1
            totals["history_bytes"] += e.ByteSize()
            t = e.event_type
            marked = e.marker_recorded_event_attributes.marker_name if t == marker else ""
            if t in billed or (marked and marked != "core_patch"):
                totals["actions"] += 1
            totals["local_activities"] += marked == "core_local_activity"
            if t == started:
                totals["actions"] += max(0, e.activity_task_started_event_attributes.attempt - 1)
            totals["activities"] += t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            totals["workflow_tasks"] += t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            totals["timers"] += t == EventType.EVENT_TYPE_TIMER_STARTED
    return {k: v / max(1, len(histories)) for k, v in totals.items()}


async def db_snapshot(st: Stack) -> dict[str, tuple[int, int]]:
    """Rows and on-disk bytes (table, indexes and TOAST) of every table of the schema."""
    from sqlalchemy import text

    async with st.engine.connect() as conn:
        tables = (
            await conn.execute(text("select relname from pg_stat_user_tables where schemaname = 'public'"))
        ).scalars()
        out = {}
        for t in list(tables):
            rows = await conn.scalar(text(f'select count(*) from "{t}"'))
            size = await conn.scalar(text("select pg_total_relation_size(cast(:t as regclass))"), {"t": f'"{t}"'})
            out[t] = (int(rows or 0), int(size or 0))
    return out


async def measure_costs(
    st: Stack,
    journey: str,
    handles: Sequence[Any],
    journeys: int,
    wall: float,
    before: dict,
    exclude: Sequence[str] = (),
) -> dict[str, float]:
    """What one journey cost, counted after the run: from the real histories of `handles`
    (Temporal's fetch_history), the SMTP sink (cleared before the run) and PostgreSQL (rows and
    bytes written since `before`, over `journeys` journeys; `exclude`: tables of the bench's own
    seed, e.g. the partners a deal benchmark needs). `wall` over len(handles) journeys gives the
    rate of one worker process. Recorded in COSTS[journey]."""
    histories = await bounded(handles, lambda h: h.fetch_history(), 50)
    costs = history_costs(histories)
    after = await db_snapshot(st)
    rows = sum(r - before.get(t, (0, 0))[0] for t, (r, _) in after.items() if t not in exclude)
    size = sum(b - before.get(t, (0, 0))[1] for t, (_, b) in after.items() if t not in exclude)
    costs.update(
        emails=st.smtp.counted / journeys,
        db_rows=rows / journeys,
        db_bytes=size / journeys,
        journeys_per_s=len(handles) / wall,
        measured_journeys=len(handles),
    )
    COSTS[journey] = {k: round(v, 3) for k, v in costs.items()}
    return COSTS[journey]
