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
import importlib
import math
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
    return Plan(partners=out, cams=cams, months=months, seed=seed, shape=shape)


# --------------------------------------------------------------------------- one run


@dataclass
class Step:
    day: float
    order: int
    action: Callable[[], Any]


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
    qbr_cycles: bool = False,
) -> None:
    """Run the plan under `policy` through the real API (in this process) against the stack in
    `settings`, whose worker must be running: store the policy, then each partner's and CAM's
    actions at their policy day, the clock advancing between them, until the horizon."""
    import httpx

    from domain.enums import Role
    from store.apikeys import create_api_key
    from store.db import make_engine, make_sessionmaker

    app = importlib.import_module("api.app").create_app(settings, reconcile_every=None)
    engine = make_engine(settings.database_url)
    keys: dict[str, str] = {}
    async with make_sessionmaker(engine)() as session, session.begin():
        _, keys["ops"] = await create_api_key(session, role=Role.ops, label="simulator")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://simulation.invalid", timeout=120) as http:

            async def call(method: str, path: str, key: str = "ops", **kw: Any) -> dict:
                r = await http.request(method, path, headers={"Authorization": f"Bearer {keys[key]}"}, **kw)
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
            steps = _steps(plan_, policy, start, cam_ids, call)
            horizon = plan_.months * DAYS_PER_MONTH
            if qbr_cycles:
                for day, period in _quarter_starts(start, policy, horizon):
                    steps.append(Step(day, 0, lambda p=period: call("POST", "/qbr/cycles", json={"period": p})))
            steps = sorted((s for s in steps if s.day < horizon), key=lambda s: (s.day, s.order))
            today, t0, shown = 0.0, time.monotonic(), -1
            for step in [*steps, Step(horizon, 99, lambda: None)]:
                if cancelled():
                    raise Cancelled
                if step.day > today:
                    await clock.sleep(policy.days(step.day - today))
                    today = step.day
                month = int(today // DAYS_PER_MONTH)
                if month != shown:
                    shown = month
                    progress(f"{label}: month {month}/{plan_.months} ({time.monotonic() - t0:.0f}s)")
                result = step.action()
                if asyncio.iscoroutine(result):
                    await result
            progress(f"{label}: {plan_.months} months simulated in {time.monotonic() - t0:.0f}s")
    await engine.dispose()


def _quarter_starts(start: datetime, policy: ProgramPolicy, horizon: float) -> list[tuple[float, str]]:
    """(policy day, period) of each QBR cycle the schedule would start within the horizon: on the
    first day of each cycle month, for the quarter before (the time-skipping server runs no
    Temporal Schedules). Off on the time-skipping server: once a cycle has run there, the server
    no longer skips time (docs/simulator.md); `qbr_cycles=True` on a dev server."""
    out = []
    for m in range(1, int(horizon / DAYS_PER_MONTH) + 2):
        y, mo = divmod(start.month - 1 + m, 12)
        first = datetime(start.year + y, mo + 1, 1, tzinfo=UTC)
        day = (first - start).total_seconds() / policy.days(1).total_seconds()
        if first.month in policy.qbr.cycle_months and day < horizon:
            prev = first - timedelta(days=1)
            out.append((day, f"{prev.year}-Q{(prev.month - 1) // 3 + 1}"))
    return out


def _steps(
    plan_: Plan, policy: ProgramPolicy, start: datetime, cam_ids: list[str], call: Callable[..., Any]
) -> list[Step]:
    steps: list[Step] = []
    partner_ids: dict[int, str] = {}
    approvers: dict[int, str] = {}

    def at(day: float) -> datetime:
        return start + policy.days(day)

    for n, p in enumerate(plan_.partners):

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

    async def start(self) -> Stack:
        from temporalio.testing import WorkflowEnvironment

        from store.migrate import upgrade
        from worker.services import Postgres, SmtpSink, free_port, register_search_attributes, temporal_test_server_path

        self.postgres = await asyncio.to_thread(Postgres(self.root / "pg", port=free_port()).start)
        await asyncio.to_thread(_migrate, upgrade, self.postgres.url)
        self.smtp = SmtpSink().start()
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
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)


async def run_once(
    plan_: Plan, policy: ProgramPolicy, root: Path, progress: Progress, label: str, cancelled: Callable[[], bool]
) -> dict[str, Any]:
    """One policy over the plan on its own throw-away stack; its counts."""
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
            async with build_worker(client, settings, sm, settings.task_queue):
                await drive(
                    plan_,
                    policy,
                    settings,
                    Clock(stack.env.sleep, stack.env.get_current_time),
                    progress,
                    label,
                    cancelled,
                )
                await settle(settings.database_url)
                return await count(settings.database_url, stack.smtp.messages, plan_)
        finally:
            await engine.dispose()
    finally:
        await stack.stop()


# --------------------------------------------------------------------------- counting


async def settle(database_url: str, timeout: float = 30) -> None:
    """Wait (real time, a clock that is not advanced) until no email of the run is still being sent."""
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                pending = (await conn.execute(text("select count(*) from outbox where status = 'pending'"))).scalar()
            if not pending:
                return
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def count(database_url: str, mails: list, plan_: Plan) -> dict[str, Any]:
    """The figures of one run, from its database and its mail sink."""
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
        "mdf_paid_minor": "select coalesce(sum(amount_minor), 0) from mdf_entries where kind = 'payment'",
        "mdf_expired_minor": "select coalesce(sum(amount_minor), 0) from mdf_entries where kind = 'expiry'",
        "qbr_meetings": "select count(*) from qbrs where state in ('scheduled', 'pre_read_sent', 'following_up', "
        "'done', 'missed') and partner_id in (select id from partners where cam_id is not null)",
        "outbox_sent": "select count(*) from outbox where status = 'sent'",
    }
    out: dict[str, Any] = {}
    async with engine.connect() as conn:
        for name, sql in q.items():
            out[name] = int((await conn.execute(text(sql))).scalar_one())
        rows = await conn.execute(text("select template, count(*) from outbox group by template order by template"))
        out["emails_by_template"] = {t: int(n) for t, n in rows.all()}
    await engine.dispose()
    out["emails"] = len(mails)
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
    ("mdf_paid_amount", "MDF paid amount"),
    ("mdf_expired_amount", "MDF expired unclaimed amount"),
)
NOT_SIMULATED = "QBR meetings per CAM: not simulated (the time-skipping server stops skipping after a QBR cycle)"


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
        "mdf_paid_amount": counts["mdf_paid_minor"] / 100,
        "mdf_expired_amount": counts["mdf_expired_minor"] / 100,
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
        return "\n".join([*lines, "", NOT_SIMULATED])


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
        # The two runs at once, each on its own stack (one event loop; the servers are processes).
        runs = (("current", current), ("draft", draft))
        found = await asyncio.gather(
            *(run_once(plan_, p, root / label, progress, label, cancelled) for label, p in runs)
        )
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
    import json
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
