"""The what-if simulator (`camlights simulate`, issue 26): a draft policy against the current one,
over the same program sample, on the time-skipping Temporal test server.

Each run gets its own throw-away stack: a PostgreSQL on a temporary directory and a free port
(migrated), an SMTP sink and a time-skipping test server. The real API (loaded by name, as uvicorn
loads it: the worker never imports the API) and a real worker (every journey's workflows and
activities from the registry) run in this process against that stack; nothing reads the
environment's DATABASE_URL, SMTP or Temporal settings except `measure`, which reads the live
program's shape read-only.

The sample: partners with a tier mix, CAMs, and deal, certification and MDF rates, measured from
the live program (`measure`) or the bench's generator (`bench_shape`). What partners and CAMs do
(`plan`) is drawn once with the seed and is identical for both runs: join day, how late each
milestone is done (a factor of its due day), deals registered (day, amount) and how long their
approver takes, certifications (expiry, renewal or not), MDF requests (and their decision delay).
Durations are in policy days, so the same behaviour meets each policy's own windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import importlib
import json
import math
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sized
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core import loop as event_loop
from core.settings import Settings
from domain.policy import ProgramPolicy

DAYS_PER_MONTH = 30.0
TIERS = ("platinum", "gold", "silver", "registered")
CATEGORIES = ("network", "security", "cloud", "storage")
AMOUNTS = (5_000, 20_000, 48_000, 120_000, 500_000)  # whole units, as the bench's generator draws them
Progress = Callable[[str], None]


class DraftError(ValueError):
    """The draft policy is not one `PUT /policy` would store: the message names the field."""


def validate_draft(data: Any) -> ProgramPolicy:
    """The draft as `PUT /policy` validates it; DraftError naming the first wrong field."""
    try:
        return ProgramPolicy.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise DraftError(f"{where}: {first['msg']}") from err


# --------------------------------------------------------------------------- the sample


@dataclass
class Shape:
    """The program's shape the sample is drawn from."""

    source: str  # "live program" or "bench generator"
    tier_mix: dict[str, float]
    partners_per_cam: float
    deals_per_partner_year: dict[str, float]
    certs_per_partner: float
    mdf_requests_per_partner_year: float
    mdf_claim_rate: float = 0.75  # share of approved MDF requests whose partner claims
    leads_per_partner_year: float = 3.0
    lead_accept: float = 0.55  # share of lead offers a partner accepts, declines (the rest it lets expire)
    lead_decline: float = 0.25


# The bench's generator (bench/seed.py, not installed with the package): its tier mix, CAM
# portfolio, deal weights by tier and rates (ten deals per partner over two years, two certifications).
BENCH_TIER_MIX = {"platinum": 0.02, "gold": 0.08, "silver": 0.25, "registered": 0.65}
BENCH_DEALS_WEIGHT = {"platinum": 4.0, "gold": 2.0, "silver": 1.2, "registered": 0.5}
BENCH_PORTFOLIO = 25


def bench_shape() -> Shape:
    """The bench's generator's program shape."""
    mean = sum(BENCH_DEALS_WEIGHT[t] * share for t, share in BENCH_TIER_MIX.items())
    per_year = 10 / 2
    return Shape(
        source="bench generator",
        tier_mix=dict(BENCH_TIER_MIX),
        partners_per_cam=float(BENCH_PORTFOLIO),
        deals_per_partner_year={t: per_year * BENCH_DEALS_WEIGHT[t] / mean for t in TIERS},
        certs_per_partner=2.0,
        mdf_requests_per_partner_year=1.0,
    )


def measure(database_url: str) -> Shape | None:
    """The live program's shape, read in a read-only transaction; None when it has no partners."""
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        rows = conn.execute("select tier, count(*) from partners where status <> 'offboarded' group by tier").fetchall()
        tiers = {t: int(n) for t, n in rows}
        total = sum(tiers.values())
        if not total:
            return None
        covered = sum(n for t, n in tiers.items() if t != "registered")
        cams = conn.execute("select count(*) from cams where deactivated_at is null").fetchone()
        deals = dict(
            conn.execute(
                "select p.tier, count(*) from deals d join partners p on p.id = d.partner_id group by p.tier"
            ).fetchall()
        )
        first = conn.execute("select min(created_at) from deals").fetchone()
        certs = conn.execute("select count(*) from certifications").fetchone()
        mdf = conn.execute("select count(*), min(created_at) from mdf_requests").fetchone()
        claims = conn.execute(
            "select count(*) filter (where claim_minor is not null), count(*) filter (where approved_minor is not null)"
            " from mdf_requests"
        ).fetchone()
        leads = conn.execute("select count(*), min(created_at) from leads").fetchone()
        offers = conn.execute(
            "select count(*) filter (where state = 'accepted'), count(*) filter (where state = 'declined'),"
            " count(*) filter (where state in ('accepted', 'declined', 'expired')) from lead_offers"
        ).fetchone()
    now = datetime.now(UTC)

    def years(since: datetime | None) -> float:
        return max((now - since).days / 365.0, 0.25) if since else 1.0

    deal_years = years(first[0] if first else None)
    cam_count = int(cams[0]) if cams else 0
    return Shape(
        source="live program",
        tier_mix={t: tiers.get(t, 0) / total for t in TIERS},
        partners_per_cam=covered / cam_count if cam_count else float(covered or 1),
        deals_per_partner_year={t: deals.get(t, 0) / tiers[t] / deal_years if tiers.get(t) else 0.0 for t in TIERS},
        certs_per_partner=(int(certs[0]) if certs else 0) / total,
        mdf_requests_per_partner_year=(int(mdf[0]) / total / years(mdf[1])) if mdf and mdf[0] else 0.0,
        mdf_claim_rate=claims[0] / claims[1] if claims and claims[1] else Shape.mdf_claim_rate,
        leads_per_partner_year=(int(leads[0]) / total / years(leads[1])) if leads and leads[0] else 0.0,
        lead_accept=offers[0] / offers[2] if offers and offers[2] else Shape.lead_accept,
        lead_decline=offers[1] / offers[2] if offers and offers[2] else Shape.lead_decline,
    )


@dataclass
class DealPlan:
    day: float
    amount: int  # whole units of the program currency
    category: str
    decide_after: float  # policy days the approver takes (when a human must decide)
    approve: bool


@dataclass
class CertPlan:
    expires_day: float  # policy days from the start
    renew_before: float | None  # renewed this many days before expiry (negative: after); None: never


@dataclass
class MdfPlan:
    day: float
    type_index: int  # the n-th activity type of the policy's catalog (modulo its length)
    amount_minor: int
    decide_after: float
    starts: bool = True  # the activity is held (started on its planned day)
    claim_after: float | None = None  # days after the activity's end the partner claims; None: never
    claim_share: float = 1.0  # of the approved amount (after the partner's share)
    claim_decide_after: float = 2.0  # days the reviewer takes
    pay_after: float = 3.0  # days after the claim is due for payment that ops record the payment


@dataclass
class LeadPlan:
    day: float
    category: str


@dataclass
class PartnerPlan:
    tier: str
    cam: int | None
    join_day: float
    lateness: float  # a milestone is done at due_day * lateness
    gives_up: float  # milestones due after this share of the plan are never done (1: all done)
    deals: list[DealPlan] = field(default_factory=list)
    certs: list[CertPlan] = field(default_factory=list)
    mdf: list[MdfPlan] = field(default_factory=list)


@dataclass
class Plan:
    partners: list[PartnerPlan]
    cams: int
    months: int
    seed: int
    shape: Shape
    leads: list[LeadPlan] = field(default_factory=list)

    def lead_answer(self, lead: int, partner: int) -> tuple[str, float]:
        """What the partner does with an offer of the lead: ("accept" | "decline" | "ignore", after
        how many days); drawn from the seed, the lead and the partner: the same in both runs,
        whichever partner each policy's routing offers it to."""
        rng = random.Random(f"{self.seed}:lead:{lead}:{partner}")
        draw, after = rng.random(), round(rng.expovariate(1 / 0.5), 2)
        if draw < self.shape.lead_accept:
            return "accept", after
        if draw < self.shape.lead_accept + self.shape.lead_decline:
            return "decline", after
        return "ignore", after


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def plan(shape: Shape, partners: int, months: int, seed: int) -> Plan:
    """Everything the partners and CAMs do, drawn once with `seed`: the same for both runs."""
    rng = random.Random(seed)
    horizon = months * DAYS_PER_MONTH
    tiers = rng.choices(TIERS, weights=[shape.tier_mix.get(t, 0) for t in TIERS], k=partners)
    covered = sum(1 for t in tiers if t != "registered")
    cams = max(1, round(covered / max(shape.partners_per_cam, 1))) if covered else 0
    out: list[PartnerPlan] = []
    slot = 0
    for tier in tiers:
        cam = None
        if tier != "registered" and cams:
            cam, slot = slot % cams, slot + 1
        p = PartnerPlan(
            tier=tier,
            cam=cam,
            join_day=round(rng.uniform(0, min(30.0, horizon / 4)), 2),
            lateness=round(rng.lognormvariate(0, 0.45), 3),
            gives_up=1.0 if rng.random() < 0.8 else round(rng.uniform(0.2, 0.9), 2),
        )
        for _ in range(_poisson(rng, shape.deals_per_partner_year.get(tier, 0) * months / 12)):
            p.deals.append(
                DealPlan(
                    day=round(rng.uniform(p.join_day + 1, horizon), 2),
                    amount=rng.choice(AMOUNTS),
                    category=rng.choice(CATEGORIES),
                    decide_after=round(rng.expovariate(1 / 2.5), 2),
                    approve=rng.random() < 0.85,
                )
            )
        for _ in range(_poisson(rng, shape.certs_per_partner)):
            renew = round(rng.uniform(-10, 45), 1) if rng.random() < 0.7 else None
            p.certs.append(CertPlan(expires_day=round(rng.uniform(20, horizon + 60), 1), renew_before=renew))
        for _ in range(_poisson(rng, shape.mdf_requests_per_partner_year * months / 12)):
            p.mdf.append(
                MdfPlan(
                    day=round(rng.uniform(p.join_day + 1, horizon), 2),
                    type_index=rng.randrange(8),
                    amount_minor=rng.choice((100_000, 300_000, 800_000, 3_000_000)),
                    decide_after=round(rng.expovariate(1 / 2.5), 2),
                )
            )
        p.deals.sort(key=lambda d: d.day)
        out.append(p)
    claims = random.Random(f"{seed}:mdf")
    for p in out:
        for req in p.mdf:
            req.starts = claims.random() < 0.9
            if claims.random() < shape.mdf_claim_rate:
                # mostly within a 45-day window, some late (past a shorter window, or any window)
                req.claim_after = round(claims.uniform(1, 60), 2)
            req.claim_share = round(claims.uniform(0.6, 1.0), 2)
            req.claim_decide_after = round(claims.expovariate(1 / 3), 2)
            req.pay_after = round(claims.uniform(0, 10), 2)
    arrivals = random.Random(f"{seed}:leads")
    leads = [
        LeadPlan(day=round(arrivals.uniform(min(30.0, horizon / 4), horizon), 2), category=arrivals.choice(CATEGORIES))
        for _ in range(_poisson(arrivals, shape.leads_per_partner_year * partners * months / 12))
    ]
    leads.sort(key=lambda lead: lead.day)
    return Plan(partners=out, cams=cams, months=months, seed=seed, shape=shape, leads=leads)


# --------------------------------------------------------------------------- one run


class _Ids:
    """The ids one request of the driver makes: drawn from its key, one after the other."""

    def __init__(self, key: str) -> None:
        self.key, self.n = key, 0

    def next(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(bytes=hashlib.sha256(f"{self.key}:{self.n}".encode()).digest()[:16], version=4)


_IDS: contextvars.ContextVar[_Ids | None] = contextvars.ContextVar("simulation_ids", default=None)
_random_uuid4 = uuid.uuid4


def _uuid4() -> uuid.UUID:
    ids = _IDS.get()
    return ids.next() if ids is not None else _random_uuid4()


def _seeded_ids() -> None:
    """Ids the API makes for a request of the driver (a partner, a lead, a deal...) are drawn from
    the request and the seed instead of at random (`uuid.uuid4` answers from `_IDS` when set).
    Routing orders its candidates by partner id and seeds its weighted draw with the lead's id:
    with random ids the same plan offered its leads to other partners on each run (issue 26)."""
    uuid.uuid4 = _uuid4  # type: ignore[assignment]  # every caller looks it up as `uuid.uuid4()`


@dataclass
class Step:
    day: float
    order: int
    action: Callable[[], Any]
    actor: int = -1  # the partner whose action it is: one actor's steps of a batch run in order


class Cancelled(Exception):
    pass


@dataclass
class Clock:
    """How a run waits: `sleep` on the time-skipping server (or real sleeps on a dev server)."""

    sleep: Callable[[timedelta], Any]
    now: Callable[[], Any]


async def drive(
    plan_: Plan,
    policy: ProgramPolicy,
    settings: Settings,
    clock: Clock,
    progress: Progress,
    label: str,
    cancelled: Callable[[], bool] = lambda: False,
    qbr_cycles: bool = True,
) -> None:
    """Run the plan under `policy` through the real API (in this process) against the stack in
    `settings`, whose worker must be running: store the policy, then each partner's and CAM's
    actions at their policy day, the clock advancing between them, until the horizon."""
    import httpx

    from domain.enums import Role
    from store.apikeys import create_api_key
    from store.db import make_engine, make_sessionmaker

    _seeded_ids()
    app = importlib.import_module("api.app").create_app(settings, reconcile_every=None)
    engine = make_engine(settings.database_url)
    keys: dict[str, str] = {}
    async with make_sessionmaker(engine)() as session, session.begin():
        _, keys["ops"] = await create_api_key(session, role=Role.ops, label="simulator")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://simulation.invalid", timeout=120) as http:
            seen: dict[str, int] = {}

            async def call(method: str, path: str, key: str = "ops", **kw: Any) -> dict:
                what = f"{plan_.seed}:{method} {path} {json.dumps(kw.get('json'), sort_keys=True)} {kw.get('data')}"
                seen[what] = seen.get(what, 0) + 1
                token = _IDS.set(_Ids(f"{what}:{seen[what]}"))
                try:
                    r = await http.request(method, path, headers={"Authorization": f"Bearer {keys[key]}"}, **kw)
                finally:
                    _IDS.reset(token)
                if r.status_code >= 500:
                    raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
                return r.json() if r.content else {}

            # Stored as PUT /policy stores it, without its hooks: the QBR cycle's Temporal Schedule
            # (which the time-skipping server does not run) is replaced by `_quarter_starts`.
            from store import repo

            async with make_sessionmaker(engine)() as session, session.begin():
                await repo.save_policy(session, policy, created_by="ops:simulator")
            start: datetime = await clock.now()
            cam_ids: list[str] = []
            for i in range(plan_.cams):
                cam = await call("POST", "/cams", json={"name": f"CAM {i}", "email": f"cam{i}@vendor.simulation.test"})
                cam_ids.append(cam["id"])
                async with make_sessionmaker(engine)() as session, session.begin():
                    _, keys[f"cam{i}"] = await create_api_key(
                        session, role=Role.cam, cam_id=uuid.UUID(cam["id"]), label="simulator"
                    )
            sm = make_sessionmaker(engine)

            async def partner_key(partner_id: str) -> str:
                """The partner's own key (a lead offer is answered by the partner it was made to)."""
                name = f"partner:{partner_id}"
                if name not in keys:
                    async with sm() as session, session.begin():
                        _, keys[name] = await create_api_key(
                            session, role=Role.partner, partner_id=uuid.UUID(partner_id), label="simulator"
                        )
                return name

            async def live_offers(lead_ids: list[str]) -> list[tuple[str, str, datetime, datetime]]:
                """(lead, partner, offered at, expires at) of the leads' live offers: what each partner sees."""
                from sqlalchemy import text

                async with engine.connect() as conn:
                    rows = await conn.execute(
                        text(
                            "select lead_id::text, partner_id::text, offered_at, expires_at from lead_offers"
                            " where state = 'live' and lead_id = any(:ids)"
                        ),
                        {"ids": [uuid.UUID(i) for i in lead_ids]},
                    )
                    return [(str(a), str(b), c, d) for a, b, c, d in rows.all()]

            async def routed(lead_id: str, timeout: float = 30) -> None:
                """Wait (real time: the clock is not advanced) until the lead is routed: a live
                offer, or no longer new or offered. Routing reads the other leads' offers (round
                robin takes the partner offered longest ago), so two routings at once would pick in
                the order their activities happen to commit; one after the other, they do not."""
                from sqlalchemy import text

                from store.db import poll

                routed_yet = text(
                    "select state not in ('new', 'offered') or exists (select 1 from lead_offers o"
                    " where o.lead_id = l.id and o.state = 'live') from leads l where l.id = :id"
                )
                # routed, or no such lead (refused)
                await poll(
                    engine.connect,
                    routed_yet,
                    {"id": uuid.UUID(lead_id)},
                    lambda done: done is not False,
                    timeout=timeout,
                    every=0.01,
                )

            world = World(start=start, call=call, partner_key=partner_key, live_offers=live_offers, routed=routed)
            steps = _steps(plan_, policy, world, cam_ids)
            horizon = plan_.months * DAYS_PER_MONTH
            steps += _lead_steps(plan_, policy, world, horizon)
            if qbr_cycles:
                from core.temporal import connect

                temporal = await connect(settings)
                for day, at in _quarter_starts(start, policy, horizon):
                    steps.append(Step(day, 0, lambda at=at: _start_qbr_cycle(temporal, settings.task_queue, at)))
            batches = _batches([s for s in steps if s.day < horizon])
            today, t0, shown = 0.0, time.monotonic(), -1
            for day, batch in [*batches, (horizon, [])]:
                if cancelled():
                    raise Cancelled
                if day > today:
                    await clock.sleep(policy.days(day - today))
                    today = day
                month = int(today // DAYS_PER_MONTH)
                if month != shown:
                    shown = month
                    progress(f"{label}: month {month}/{plan_.months} ({time.monotonic() - t0:.0f}s)")
                await _run_batch(batch)
            progress(f"{label}: {plan_.months} months simulated in {time.monotonic() - t0:.0f}s")
    await engine.dispose()


def _batches(steps: list[Step]) -> list[tuple[float, list[Step]]]:
    """The steps grouped by their instant, in (day, order) order."""
    out: list[tuple[float, list[Step]]] = []
    for step in sorted(steps, key=lambda s: (s.day, s.order)):
        if out and out[-1][0] == step.day:
            out[-1][1].append(step)
        else:
            out.append((step.day, [step]))
    return out


async def _run_batch(batch: list[Step], width: int = 16) -> None:
    """One instant's steps: each order in turn (a partner joins before it certifies), and within an
    order the actors at once (at most `width`), each actor's steps one after the other; steps
    without an actor (-1) one after the other, before the others of their order."""
    gate = asyncio.Semaphore(width)

    async def chain(steps: list[Step]) -> None:
        async with gate:
            for step in steps:
                result = step.action()
                if asyncio.iscoroutine(result):
                    await result

    for order in sorted({s.order for s in batch}):
        actors: dict[int, list[Step]] = {}
        for s in batch:
            if s.order == order:
                actors.setdefault(s.actor, []).append(s)
        if -1 in actors:
            await chain(actors.pop(-1))
        if actors:
            await asyncio.gather(*(chain(steps) for steps in actors.values()))


# The QBR cycle's Temporal Schedule (journeys/qbr/schedules.py): the workflow type it starts, with
# no period (the run finds the quarter before its time), and the id it starts it with (a Schedule
# appends the scheduled time). Names, not imports: the platform does not import a journey's internals;
# tests/simulate pins them to the schedule's.
QBR_CYCLE_WORKFLOW = "QbrCycleWorkflow"
QBR_SCHEDULED_ID = "qbr-cycle-scheduled"


def _quarter_starts(start: datetime, policy: ProgramPolicy, horizon: float) -> list[tuple[float, datetime]]:
    """(policy day, instant) of each QBR cycle the schedule would start within the horizon: midnight
    of the first day of each of the policy's `qbr.cycle_months`, in its time zone."""
    from zoneinfo import ZoneInfo

    q = policy.qbr
    zone = ZoneInfo(q.time_zone)
    local = start.astimezone(zone)
    out = []
    for m in range(1, int(horizon / DAYS_PER_MONTH) + 2):
        y, mo = divmod(local.month - 1 + m, 12)
        first = datetime(local.year + y, mo + 1, 1, tzinfo=zone)
        day = (first - start).total_seconds() / policy.days(1).total_seconds()
        if first.month in q.cycle_months and 0 < day < horizon:
            out.append((day, first.astimezone(UTC)))
    return out


# How long one skip of the clock may take in real time: the server skips only once every activity
# and workflow task due before the target instant is done, which on a busy day of a large program
# takes longer than the client's default RPC deadline (a 200-partner year ended on it). A skip that
# takes this long is stuck, and the run fails naming it.
SKIP_DEADLINE = timedelta(minutes=20)


def _skip_sleep(client: Any) -> Callable[[timedelta], Any]:
    """`WorkflowEnvironment.sleep` with an explicit deadline (the SDK's uses the default one)."""
    from temporalio.api.testservice.v1 import SleepRequest

    async def sleep(duration: timedelta) -> None:
        req = SleepRequest()
        req.duration.FromTimedelta(duration)
        await client.test_service.unlock_time_skipping_with_sleep(req, timeout=SKIP_DEADLINE)

    return sleep


async def _start_qbr_cycle(client: Any, task_queue: str, at: datetime) -> None:
    """What the schedule does at `at`: the cycle workflow without a period, under the schedule's id."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(QBR_CYCLE_WORKFLOW, {}, id=f"{QBR_SCHEDULED_ID}-{stamp}", task_queue=task_queue)


@dataclass
class World:
    """What the behaviour acts through: the run's API (`call`), partner keys, and what partners see."""

    start: datetime
    call: Callable[..., Any]
    partner_key: Callable[[str], Any]
    live_offers: Callable[[list[str]], Any]
    routed: Callable[[str], Any]  # waits until a lead that arrived or was answered is routed again
    partner_ids: dict[int, str] = field(default_factory=dict)  # plan index -> partner id

    def day_of(self, at: datetime, policy: ProgramPolicy) -> float:
        return (at - self.start).total_seconds() / policy.days(1).total_seconds()

    def at(self, day: float, policy: ProgramPolicy) -> datetime:
        return self.start + policy.days(day)


LEAD_TICK = 0.25  # policy days between two looks of the partners at their lead offers
# A partner answers an offer only while more than this (policy days) is left of it: an offer made at
# one look expires at a later look's instant (16 business hours after it), and an answer at that
# look raced the expiry by the milliseconds of the test server's clock (the report then varied).
ANSWER_MARGIN = 0.01
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = (  # a 1x1 PNG
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU"
    b"\x00\x00\x00\nIDATx\x9cc\x00\x00\x00\x02\x00\x01\xe5'\xde\xfc\x00\x00\x00\x00IEND\xaeB`\x82"
)
PROOF = {  # a file each proof kind accepts (checked by content)
    "invoice": ("invoice.pdf", PDF, "application/pdf"),
    "photo": ("photo.png", PNG, "image/png"),
    "attendee_list": ("attendees.pdf", PDF, "application/pdf"),
}


def _lead_steps(plan_: Plan, policy: ProgramPolicy, world: World, horizon: float) -> list[Step]:
    """Each lead arrives (`POST /leads`, in the plan's order); every `LEAD_TICK` the partners look at
    their live offers and, once their drawn delay has passed, accept or decline (or let it expire)."""
    if not plan_.leads:
        return []
    steps: list[Step] = []
    ids: dict[str, int] = {}  # lead id -> plan index
    open_: set[str] = set()
    answered: set[tuple[str, str]] = set()
    index_of: dict[str, int] = {}  # partner id -> plan index

    for i, lead in enumerate(plan_.leads):

        async def arrive(i: int = i, lead: LeadPlan = lead) -> None:
            out = await world.call(
                "POST",
                "/leads",
                json={
                    "company": f"Lead customer {i}",
                    "domain": f"lead{i}-customer.example",
                    "contact_name": f"Contact {i}",
                    "contact_email": f"buyer@lead{i}-customer.example",
                    "country": "DE",
                    "product_category": lead.category,
                },
            )
            if out.get("id"):
                ids[out["id"]] = i
                open_.add(out["id"])
                await world.routed(out["id"])

        steps.append(Step(lead.day, 13, arrive))

    async def look(day: float) -> None:
        if not open_:
            return
        if len(index_of) != len(world.partner_ids):
            index_of.update({pid: n for n, pid in world.partner_ids.items()})
        live = await world.live_offers(sorted(open_))
        still = {lead_id for lead_id, _, _, _ in live}
        for lead_id, partner_id, offered_at, expires_at in sorted(live):
            if (lead_id, partner_id) in answered or partner_id not in index_of:
                continue
            answer, after = plan_.lead_answer(ids[lead_id], index_of[partner_id])
            if answer == "ignore" or day < world.day_of(offered_at, policy) + after:
                continue
            if expires_at - world.at(day, policy) <= policy.days(ANSWER_MARGIN):
                continue  # too late: it expires (an answer and the expiry at nearly one instant raced)
            answered.add((lead_id, partner_id))
            key = await world.partner_key(partner_id)
            body = {} if answer == "accept" else {"reason_code": policy.leads.decline_reasons[0]}
            await world.call("POST", f"/leads/{lead_id}/{answer}", key=key, **({"json": body} if body else {}))
            await world.routed(lead_id)  # a decline offers the lead to the next partner before the next answer
        # a lead with no live offer is being routed, placed or unplaced: looked at until the horizon
        # only while it may still get an offer (placed and unplaced ones are dropped)
        for lead_id in sorted(open_ - still):
            if (await world.call("GET", f"/leads/{lead_id}")).get("state") not in ("new", "offered"):
                open_.discard(lead_id)

    first = plan_.leads[0].day
    ticks = int((horizon - first) / LEAD_TICK)
    steps += [Step(first + k * LEAD_TICK, 14, lambda d=first + k * LEAD_TICK: look(d)) for k in range(1, ticks + 1)]
    return steps


def _mdf_claim_steps(
    req: MdfPlan,
    name: str,
    ids: dict[str, str],
    approver: Callable[[int], str | None],
    n: int,
    policy: ProgramPolicy,
    world: World,
) -> list[Step]:
    """After an approved request: the activity held on its planned day, the claim with its proof
    `claim_after` days after the activity's end (past the claim window: refused, the reservation
    expires unclaimed), the claim reviewed, and once due for payment, paid by ops."""
    call = world.call
    end = req.day + 21  # the planned end (`request` plans the activity 20 to 21 days ahead)

    async def state() -> dict:
        return await call("GET", f"/mdf/requests/{ids['id']}") if ids.get("id") else {}

    async def start() -> None:
        if (await state()).get("state") == "approved":
            await call("POST", f"/mdf/requests/{ids['id']}/start")

    async def claim() -> None:
        out = await state()
        if out.get("state") != "running" or not out.get("approved_minor"):
            return
        kinds = policy.mdf.activity_types[req.type_index % len(policy.mdf.activity_types)]
        share = float(out.get("partner_share_percent", kinds.partner_share_percent))
        amount = max(1, int(out["approved_minor"] * req.claim_share))
        total = math.ceil(amount * 100 / max(100 - share, 1)) + 100
        await call(
            "POST",
            f"/mdf/requests/{ids['id']}/claim",
            data={"amount_minor": str(amount), "total_cost_minor": str(total)},
            files=[(kind.value, PROOF[kind.value]) for kind in kinds.proof],
        )

    async def review() -> None:
        for key in dict.fromkeys([approver(n) or "ops", "ops", "ops"]):  # the levels in turn
            if (await state()).get("state") != "claim_review":
                return
            await call("POST", f"/mdf/requests/{ids['id']}/claim/decision", key=key, json={"decision": "approve"})

    async def pay(k: int) -> None:
        out = await state()
        told = "due_for_payment" if policy.mdf.payment_cutoff_day is not None else "claim_approved"
        if out.get("state") != told:  # ops pay when the cut-off tells them (without one: once approved)
            return
        due = int(out.get("approved_claim_minor") or 0) - int(out.get("paid_minor") or 0)
        if due > 0:
            paid_on = (world.start + policy.days(req.day)).date().isoformat()
            body = {"reference": f"SIM-{name}-{k}", "amount_minor": due, "paid_on": paid_on}
            await call("POST", f"/mdf/requests/{ids['id']}/payments", json=body)

    steps = [Step(req.day + 20, 9, start)] if req.starts else []
    if req.starts and req.claim_after is not None:
        claimed = end + req.claim_after
        decided = claimed + req.claim_decide_after
        steps += [Step(claimed, 10, claim), Step(decided, 11, review)]
        # due for payment at the policy's next cut-off day: ops look weekly for two months
        steps += [Step(decided + req.pay_after + 7 * k, 12, lambda k=k: pay(k)) for k in range(9)]
    return steps


def _steps(plan_: Plan, policy: ProgramPolicy, world: World, cam_ids: list[str]) -> list[Step]:
    steps: list[Step] = []
    start, call = world.start, world.call
    partner_ids = world.partner_ids
    approvers: dict[int, str] = {}

    def at(day: float) -> datetime:
        return start + policy.days(day)

    for n, p in enumerate(plan_.partners):
        first = len(steps)

        async def join(n: int = n, p: PartnerPlan = p) -> None:
            body = {
                "name": f"Partner {n}",
                "domain": f"p{n}.simulation.test",
                "country": "DE",
                "type": "reseller",
                "tier": p.tier,
                "contact_email": f"owner@p{n}.simulation.test",
            }
            if p.cam is not None:
                body["cam_id"] = cam_ids[p.cam]
            out = await call("POST", "/partners", json=body)
            partner_ids[n] = out["id"]
            approvers[n] = f"cam{p.cam}" if "cam_id" in body else "ops"

        steps.append(Step(p.join_day, 1, join))
        plan_days = policy.onboarding.plan_days
        for m in policy.onboarding.milestones:
            if p.tier not in [t.value for t in m.required_for] or m.due_day > p.gives_up * plan_days:
                continue
            steps.append(
                Step(
                    p.join_day + m.due_day * p.lateness,
                    2,
                    lambda n=n, key=m.key: call("POST", f"/partners/{partner_ids[n]}/onboarding/milestones/{key}"),
                )
            )
        for c, cert in enumerate(p.certs):
            cert_id: dict[str, str] = {}

            async def certify(n: int = n, c: int = c, cert: CertPlan = cert, ids: dict = cert_id) -> None:
                out = await call(
                    "POST",
                    "/certifications",
                    json={
                        "partner_id": partner_ids[n],
                        "person_name": f"Person {c}",
                        "person_email": f"person{c}@p{n}.simulation.test",
                        "track": "Network Associate",
                        "product_category": CATEGORIES[c % len(CATEGORIES)],
                        "issued_at": at(cert.expires_day - 730).isoformat(),
                        "expires_at": at(cert.expires_day).isoformat(),
                    },
                )
                ids["id"] = out.get("id", "")

            steps.append(Step(p.join_day, 3, certify))
            if cert.renew_before is not None:
                renew_day = max(p.join_day, cert.expires_day - cert.renew_before)
                steps.append(
                    Step(
                        renew_day,
                        4,
                        lambda cert=cert, ids=cert_id: call(
                            "POST",
                            f"/certifications/{ids['id']}/renewals",
                            json={"expires_at": at(cert.expires_day + 730).isoformat()},
                        ),
                    )
                )
        for d, deal in enumerate(p.deals):
            deal_id: dict[str, str] = {}

            async def register(n: int = n, d: int = d, deal: DealPlan = deal, ids: dict = deal_id) -> None:
                out = await call(
                    "POST",
                    "/deals",
                    json={
                        "partner_id": partner_ids[n],
                        "customer_name": f"Customer {n}-{d}",
                        "customer_domain": f"customer{n}x{d}.example",
                        "product_category": deal.category,
                        "amount": str(deal.amount),
                        "currency": policy.deal.currency,
                        "expected_close_date": at(deal.day + 90).date().isoformat(),
                        "stage": "qualification",
                    },
                )
                ids["id"] = out.get("id", "")
                ids["state"] = out.get("state", "")

            async def decide(n: int = n, deal: DealPlan = deal, ids: dict = deal_id) -> None:
                if ids.get("state") not in ("pending_approval", "conflict_review"):
                    return
                decision = "approve" if deal.approve else "reject"
                await call(
                    "POST",
                    f"/deals/{ids['id']}/decision",
                    key=approvers[n],
                    json={"decision": decision, "reason": "simulated decision"},
                )

            steps.append(Step(deal.day, 5, register))
            steps.append(Step(deal.day + deal.decide_after, 6, decide))
        for r, req in enumerate(p.mdf):
            req_id: dict[str, str] = {}

            async def request(n: int = n, r: int = r, req: MdfPlan = req, ids: dict = req_id) -> None:
                types = policy.mdf.activity_types
                out = await call(
                    "POST",
                    "/mdf/requests",
                    json={
                        "partner_id": partner_ids[n],
                        "activity_type": types[req.type_index % len(types)].key,
                        "title": f"Activity {r}",
                        "planned_start": at(req.day + 20).date().isoformat(),
                        "planned_end": at(req.day + 21).date().isoformat(),
                        "amount_minor": req.amount_minor,
                        "currency": policy.mdf.currency,
                    },
                )
                ids["id"] = out.get("id", "")
                ids["state"] = out.get("state", "")

            async def mdf_decide(n: int = n, ids: dict = req_id) -> None:
                if ids.get("state") != "pending_approval":
                    return
                await call(
                    "POST", f"/mdf/requests/{ids['id']}/decision", key=approvers[n], json={"decision": "approve"}
                )

            steps.append(Step(req.day, 7, request))
            steps.append(Step(req.day + req.decide_after, 8, mdf_decide))
            steps += _mdf_claim_steps(req, f"{n}-{r}", req_id, approvers.get, n, policy, world)
        for step in steps[first:]:
            step.actor = n
    return steps


# --------------------------------------------------------------------------- the stack

_MIGRATING = threading.Lock()  # Alembic's command API keeps module state: one migration at a time


def _migrate(upgrade: Callable[[str], None], url: str) -> None:
    with _MIGRATING:
        upgrade(url)


@dataclass
class Stack:
    """One run's throw-away PostgreSQL, SMTP sink and time-skipping test server."""

    root: Path
    postgres: Any = None
    smtp: Any = None
    env: Any = None
    _starting: Any = None

    async def start(self) -> Stack:
        from temporalio.testing import WorkflowEnvironment

        from store.migrate import upgrade
        from worker.services import Postgres, SmtpSink, free_port, register_search_attributes, temporal_test_server_path

        self.postgres = Postgres(self.root / "pg", port=free_port(), throwaway=True)
        # Its start goes on in its thread if the run is cancelled meanwhile: `stop` waits for it.
        self._starting = asyncio.ensure_future(asyncio.to_thread(self.postgres.start))
        await asyncio.shield(self._starting)
        await asyncio.to_thread(_migrate, upgrade, self.postgres.url)
        self.smtp = SmtpSink(keep=False).start()  # counted only: the report needs no message itself
        self.env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(temporal_test_server_path())
        )
        await register_search_attributes(self.env.client)
        return self

    def settings(self) -> Settings:
        return Settings(
            environment="development",
            database_url=self.postgres.url,
            smtp_host=self.smtp.host,
            smtp_port=self.smtp.port,
            temporal_address=self.env.client.service_client.config.target_host,
            temporal_namespace=self.env.client.namespace,
            task_queue="simulation",
            ops_email="ops@vendor.simulation.test",
            public_base_url="http://simulation.invalid",
            link_secret="simulation-link-secret",
            # Every address, credential and store named, so the environment's live ones never apply.
            temporal_tls=False,
            temporal_api_key=None,
            smtp_username=None,
            smtp_password=None,
            smtp_starttls=False,
            mail_from="CAM Lights simulation <no-reply@simulation.invalid>",
            payload_keys=None,
            payload_key_active=None,
            proof_bucket=None,
            otlp_endpoint=None,
            data_dir=self.root / "data",
            partner_updates_per_minute=10000,
            # Every open journey stays in the worker's cache: beyond it (the default 1,000; a year of
            # 200 partners has more open) each workflow task of an evicted one replays its history.
            worker_max_cached_workflows=100_000,
            worker_metrics_port=0,
            worker_health_port=0,
            _env_file=None,
        )

    async def stop(self) -> None:
        if self.env is not None:
            with contextlib.suppress(Exception):
                await self.env.shutdown()
        if self.smtp is not None:
            self.smtp.stop()
        if self._starting is not None:
            with contextlib.suppress(BaseException):
                await self._starting
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)


async def run_once(
    plan_: Plan,
    policy: ProgramPolicy,
    root: Path,
    progress: Progress,
    label: str,
    cancelled: Callable[[], bool],
    qbr_cycles: bool = True,
) -> dict[str, Any]:
    """One policy over the plan on its own throw-away stack; its counts. `qbr_cycles`: start the
    QBR cycles at the policy's cadence (of the calendar: the test server's clock starts now)."""
    from core import registry
    from core.temporal import connect
    from store.db import make_engine, make_sessionmaker
    from worker.main import build_worker

    stack = Stack(root)
    try:
        progress(f"{label}: starting a throw-away PostgreSQL, SMTP sink and time-skipping Temporal server")
        await stack.start()
        settings = stack.settings()
        client = await connect(settings)
        engine = make_engine(settings.database_url)
        sm = make_sessionmaker(engine)
        try:
            # Unsandboxed: the same deterministic workflows (their replay tests run sandboxed), a
            # third less CPU per workflow task; a throw-away run needs no guard against side effects.
            from temporalio.worker import UnsandboxedWorkflowRunner

            in_order = registry.simulation_interceptors(sm)  # e.g. leads expiring at one instant: in id order
            async with build_worker(client, settings, sm, settings.task_queue, UnsandboxedWorkflowRunner(), in_order):
                await drive(
                    plan_,
                    policy,
                    settings,
                    Clock(_skip_sleep(stack.env.client), stack.env.get_current_time),
                    progress,
                    label,
                    cancelled,
                    qbr_cycles,
                )
                await settle(settings.database_url)
                return await count(settings.database_url, stack.smtp.counted, plan_)
        finally:
            await engine.dispose()
    finally:
        await stack.stop()


# --------------------------------------------------------------------------- counting


async def settle(database_url: str, timeout: float = 30) -> None:
    """Wait (real time, a clock that is not advanced) until no email of the run is still being sent."""
    from sqlalchemy import text

    from store.db import make_engine, poll

    engine = make_engine(database_url)
    pending = text("select count(*) from outbox where status = 'pending'")
    try:
        await poll(engine.connect, pending, {}, lambda n: not n, timeout=timeout, every=0.2)
    finally:
        await engine.dispose()


async def count(database_url: str, mails: Sized | int, plan_: Plan) -> dict[str, Any]:
    """The figures of one run, from its database and its mail sink (its messages, or how many)."""
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(database_url)
    q = {
        "cam_decisions": "select count(*) from deals where decided_by like 'cam:%'",
        "deal_escalations": "select count(distinct idempotency_key) from outbox where journey = 'deal' "
        "and template like '%escalation%'",
        "escalations": "select count(distinct idempotency_key) from outbox where template like '%escalat%'",
        "deals": "select count(*) from deals",
        "deals_auto_approved": "select count(*) from deals where decided_by = 'system' and state in "
        "('approved', 'won', 'lost', 'expired')",
        "deals_auto_approved_minor": "select coalesce(sum(amount_minor), 0) from deals where decided_by = 'system' "
        "and state in ('approved', 'won', 'lost', 'expired')",
        "onboarding_active": "select count(*) from partners where status = 'active'",
        "onboarding_at_risk": "select count(*) from partners where status = 'at_risk'",
        "certifications_lapsed": "select count(*) from certifications where state = 'lapsed'",
        "mdf_requested": "select count(*) from mdf_requests",
        "mdf_requested_minor": "select coalesce(sum(amount_minor), 0) from mdf_requests",
        "mdf_claimed": "select count(*) from mdf_requests where claim_minor is not null",
        "mdf_claimed_minor": "select coalesce(sum(claim_minor), 0) from mdf_requests",
        "mdf_paid_minor": "select coalesce(sum(paid_minor), 0) from mdf_requests",
        "mdf_expired_unclaimed": "select count(*) from mdf_requests where state = 'expired'",
        "mdf_expired_unclaimed_minor": "select coalesce(sum(approved_minor), 0) from mdf_requests "
        "where state = 'expired'",
        "mdf_expired_minor": "select coalesce(sum(amount_minor), 0) from mdf_entries where kind = 'expiry'",
        # the CAM-led QBRs the cadence asked of the CAMs (held, pending or missed)
        "qbr_meetings": "select count(*) from qbrs where state in ('scheduling', 'scheduled', 'pre_read_sent', "
        "'following_up', 'done', 'missed') and partner_id in (select id from partners where cam_id is not null)",
        "qbrs": "select count(*) from qbrs",
        "leads": "select count(*) from leads",
        "leads_unplaced": "select count(*) from leads where state = 'unplaced'",
        "leads_placed": "select count(*) from leads where state in ('accepted', 'converted', 'lapsed')",
        "outbox_sent": "select count(*) from outbox where status = 'sent'",
    }
    out: dict[str, Any] = {}
    async with engine.connect() as conn:
        for name, sql in q.items():
            out[name] = int((await conn.execute(text(sql))).scalar_one())
        rows = await conn.execute(text("select template, count(*) from outbox group by template order by template"))
        out["emails_by_template"] = {t: int(n) for t, n in rows.all()}
    await engine.dispose()
    out["emails"] = mails if isinstance(mails, int) else len(mails)
    return out


METRICS = (  # (key, label, how it is derived from the counts)
    ("approvals_per_cam_week", "CAM approvals per CAM per week"),
    ("escalations_per_cam_week", "escalations per CAM per week"),
    ("emails_per_partner_month", "emails per partner per month"),
    ("deals_auto_approved", "deals auto-approved"),
    ("deals_auto_approved_amount", "auto-approved amount"),
    ("onboarding_active", "partners activated"),
    ("onboarding_at_risk", "partners at risk"),
    ("certifications_lapsed", "certifications lapsed"),
    ("mdf_requested", "MDF requests"),
    ("mdf_requested_amount", "MDF requested amount"),
    ("mdf_claimed", "MDF claims"),
    ("mdf_claimed_amount", "MDF claimed amount"),
    ("mdf_paid_amount", "MDF paid amount"),
    ("mdf_expired_unclaimed", "MDF requests expired unclaimed"),
    ("mdf_expired_unclaimed_amount", "MDF approved amount expired unclaimed"),
    ("mdf_expired_amount", "MDF funds expired unreserved"),
    ("qbr_meetings_per_cam", "QBR meetings per CAM"),
    ("leads", "leads"),
    ("leads_unplaced", "leads unplaced"),
)


def figures(counts: dict[str, Any], plan_: Plan) -> dict[str, float]:
    weeks = plan_.months * DAYS_PER_MONTH / 7
    cams = max(plan_.cams, 1)
    partners = max(len(plan_.partners), 1)
    return {
        "approvals_per_cam_week": round(counts["cam_decisions"] / cams / weeks, 3),
        "escalations_per_cam_week": round(counts["escalations"] / cams / weeks, 3),
        "emails_per_partner_month": round(counts["emails"] / partners / plan_.months, 3),
        "deals_auto_approved": counts["deals_auto_approved"],
        "deals_auto_approved_amount": counts["deals_auto_approved_minor"] / 100,
        "onboarding_active": counts["onboarding_active"],
        "onboarding_at_risk": counts["onboarding_at_risk"],
        "certifications_lapsed": counts["certifications_lapsed"],
        "mdf_requested": counts["mdf_requested"],
        "mdf_requested_amount": counts["mdf_requested_minor"] / 100,
        "mdf_claimed": counts["mdf_claimed"],
        "mdf_claimed_amount": counts["mdf_claimed_minor"] / 100,
        "mdf_paid_amount": counts["mdf_paid_minor"] / 100,
        "mdf_expired_unclaimed": counts["mdf_expired_unclaimed"],
        "mdf_expired_unclaimed_amount": counts["mdf_expired_unclaimed_minor"] / 100,
        "mdf_expired_amount": counts["mdf_expired_minor"] / 100,
        "qbr_meetings_per_cam": round(counts["qbr_meetings"] / cams, 3),
        "leads": counts["leads"],
        "leads_unplaced": counts["leads_unplaced"],
    }


# --------------------------------------------------------------------------- the simulation


@dataclass
class Report:
    partners: int
    cams: int
    months: int
    seed: int
    sample: str
    tiers: dict[str, int]
    current: dict[str, float]
    draft: dict[str, float]
    counts: dict[str, dict[str, Any]]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["differences"] = [k for k, _ in METRICS if self.current.get(k) != self.draft.get(k)]
        out["labels"] = dict(METRICS)
        return out

    def table(self) -> str:
        head = (
            f"What-if: {self.partners} partners ({', '.join(f'{t} {n}' for t, n in self.tiers.items() if n)}), "
            f"{self.cams} CAMs, {self.months} months, seed {self.seed}, sample from the {self.sample} "
            f"({self.seconds:.0f}s)"
        )
        width = max(len(label) for _, label in METRICS)
        lines = [head, "", f"  {'':{width}}  {'current':>14}  {'draft':>14}"]
        for key, label in METRICS:
            a, b = self.current[key], self.draft[key]
            mark = "" if a == b else f"  <-- {_delta(a, b)}"
            lines.append(f"  {label:{width}}  {_fmt(a):>14}  {_fmt(b):>14}{mark}")
        return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _delta(a: float, b: float) -> str:
    diff = b - a
    sign = "+" if diff > 0 else ""
    pct = f" ({sign}{diff / a:.0%})" if a else ""
    return f"{sign}{_fmt(diff)}{pct}"


async def simulate(
    current: ProgramPolicy,
    draft: ProgramPolicy,
    plan_: Plan,
    progress: Progress = print,
    cancelled: Callable[[], bool] = lambda: False,
) -> Report:
    """Both policies over the same plan, at the same time, each on its own throw-away stack
    (temporary directories removed, also on cancellation)."""
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="camlights-simulate-"))
    try:
        # The two runs at once, each in its own process (two cores) on its own stack.
        runs = (("current", current), ("draft", draft))
        found = await _in_processes([(plan_, p, root / label, label) for label, p in runs], progress, cancelled)
        counts = dict(zip((label for label, _ in runs), found, strict=True))
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)
    tiers = {t: sum(1 for p in plan_.partners if p.tier == t) for t in TIERS}
    return Report(
        partners=len(plan_.partners),
        cams=plan_.cams,
        months=plan_.months,
        seed=plan_.seed,
        sample=plan_.shape.source,
        tiers=tiers,
        current=figures(counts["current"], plan_),
        draft=figures(counts["draft"], plan_),
        counts=counts,
        seconds=time.monotonic() - t0,
    )


CHILD_MARK = "@@simulation "  # the lines a run's process reports on (its other output is passed through)


def _cancel_when_orphaned(loop: asyncio.AbstractEventLoop, task: Any, parent: int, every: float = 1.0) -> None:
    """Cancel `task` at once when the process that started this one is gone (killed, or its own
    time limit over): the run's servers are stopped and its files removed, as when cancelled,
    instead of running on for nobody (a skip of the clock may wait up to SKIP_DEADLINE)."""
    import os

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        loop.call_soon_threadsafe(task.cancel)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _child_main() -> None:
    """A run in a process of its own (`_in_processes`): its arguments pickled on stdin; progress,
    then its counts, cancellation or failure as marked JSON lines on stdout. SIGTERM cancels (at
    the next instant of the run: its servers stopped, its files removed); SIGINT is the parent's."""
    import gc
    import os
    import pickle
    import signal
    import sys
    import traceback

    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    plan_, policy, root, label = pickle.loads(sys.stdin.buffer.read())

    def tell(kind: str, value: Any) -> None:
        try:
            sys.stdout.write(CHILD_MARK + json.dumps([kind, value]) + "\n")
            sys.stdout.flush()
        except OSError:  # the parent is gone (a broken pipe): the orphan watch cancels the run
            pass

    async def main() -> dict[str, Any]:
        _cancel_when_orphaned(asyncio.get_running_loop(), asyncio.current_task(), parent)
        return await run_once(plan_, policy, root, lambda m: tell("progress", m), label, stop.is_set)

    # A run allocates millions of short-lived objects (rows, payloads, messages): collected every
    # 50,000 allocations instead of 700, the collector took 0.5 s of a 200-partner two-month run's
    # CPU instead of 3.1 s (measured with gc callbacks; the process lives for one run).
    gc.set_threshold(50_000, 20, 20)
    parent = os.getppid()
    try:
        tell("done", _run(main()))
    except (Cancelled, asyncio.CancelledError):
        tell("cancelled", None)
    except BaseException:
        tell("failed", traceback.format_exc())
    if os.getppid() != parent:  # orphaned: nobody removes the run's directory but the run itself
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(OSError):  # the simulation's own, once both runs' are gone
            os.rmdir(root.parent)


def _run(main: Any) -> Any:
    """A run's event loop: uvloop's where installed (core/loop.py)."""
    return event_loop.run(main)


async def _in_processes(
    runs: list[tuple[Plan, ProgramPolicy, Path, str]], progress: Progress, cancelled: Callable[[], bool]
) -> list[dict[str, Any]]:
    """Each run in its own process (both cores), their progress forwarded. Cancelled (by
    `cancelled`, or by cancelling the caller), each child is told (SIGTERM) and waited for: it
    stops its servers and removes its files first."""
    import os
    import pickle
    import sys

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    procs = []
    for run in runs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from worker.simulate import _child_main; _child_main()",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(run))
        proc.stdin.close()
        procs.append(proc)
    outcome: dict[str, tuple[str, Any]] = {}

    async def follow(proc: asyncio.subprocess.Process, label: str) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace")
            if not line.startswith(CHILD_MARK):
                continue
            kind, value = json.loads(line[len(CHILD_MARK) :])
            if kind == "progress":
                progress(value)
            else:
                outcome[label] = (kind, value)
        await proc.wait()

    async def watch() -> None:
        while not cancelled():
            await asyncio.sleep(0.5)
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(follow(proc, label) for proc, (*_, label) in zip(procs, runs, strict=True)))
    except BaseException:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), 120)
            except (TimeoutError, asyncio.CancelledError):
                if proc.returncode is None:
                    proc.kill()
        raise
    finally:
        watcher.cancel()
    results = []
    for *_, label in runs:
        kind, value = outcome.get(label, ("failed", "the run's process ended without its counts"))
        if kind == "cancelled":
            raise Cancelled
        if kind != "done":
            raise RuntimeError(f"{label}: {value}")
        results.append(value)
    return results


# --------------------------------------------------------------------------- the command line


def live_policy(database_url: str) -> ProgramPolicy | None:
    """The live program's current policy, read-only (None: no database or no stored version)."""
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        row = conn.execute("select policy from policy_versions order by version desc limit 1").fetchone()
    return ProgramPolicy.model_validate(row[0]) if row else None


def check_bounds(partners: int, months: int, policy: ProgramPolicy) -> None:
    """Sample size and horizon within the policy's caps (`limits.simulation_*`)."""
    limits = policy.model_dump()["limits"]
    max_partners = limits.get("simulation_max_partners", 200)
    max_months = limits.get("simulation_max_months", 24)
    if not 1 <= partners <= max_partners:
        raise DraftError(f"partners: from 1 to {max_partners} (limits.simulation_max_partners)")
    if not 1 <= months <= max_months:
        raise DraftError(f"months: from 1 to {max_months} (limits.simulation_max_months)")


def run_cli(args: Any) -> int:
    import signal
    import sys

    from core.settings import get_tool_settings

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    try:
        draft = validate_draft(json.loads(Path(args.draft).read_text()))
        current = validate_draft(json.loads(Path(args.current).read_text())) if args.current else None
    except (OSError, json.JSONDecodeError) as err:
        return fail(f"--draft: {err}")
    except DraftError as err:
        return fail(f"the draft policy is invalid: {err}")
    shape = None
    database_url = get_tool_settings().database_url
    try:
        shape = measure(database_url)
        if current is None:
            current = live_policy(database_url)
    except Exception as err:  # no live database: the bench's program and the default policy
        print(f"# no live program read ({type(err).__name__}); using the bench generator", file=sys.stderr)
    current = current or ProgramPolicy.model_validate({})
    try:
        check_bounds(args.partners, args.months, current)
    except DraftError as err:
        return fail(str(err))
    plan_ = plan(shape or bench_shape(), args.partners, args.months, args.seed)

    def progress(msg: str) -> None:
        print(f"[simulate {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    async def main() -> Report:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await simulate(current, draft, plan_, progress)

    try:
        report = asyncio.run(main())
    except asyncio.CancelledError:
        print("cancelled; the throw-away servers are stopped and their files removed", file=sys.stderr)
        return 130
    print(report.table())
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report.as_json(), indent=2))
    return 0
