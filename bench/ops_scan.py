"""`GET /ops/retrying` at program scale: one journey whose step keeps failing (on a worker with our
retrying-steps interceptor), started first, then N running journeys started after it (each
waiting on a delayed start, so it costs no worker); the time the API takes to list the stuck one
among them (it reads the index of retrying steps and describes only those).

    .venv/bin/python -m bench --only ops --n 10000
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from bench import harness
from bench.harness import Section, log


@activity.defn(name="bench_always_fails")
async def always_fails() -> None:
    raise RuntimeError("the mail server answers 451, as when a mailbox is over quota")


@workflow.defn(name="BenchStuckWorkflow")
class StuckWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            always_fails,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5)),
        )


async def run(st: harness.Stack, n: int) -> list[Section]:
    import httpx
    from temporalio.worker import Worker

    from api.app import create_app
    from worker.interceptors import RetryingStepsInterceptor

    client, tq = st.client, st.settings.task_queue
    s = Section(f"ops: a stuck journey among {n} running (GET /ops/retrying)")
    interceptors = [RetryingStepsInterceptor(st.sessionmaker)]
    async with Worker(
        client, task_queue=tq, workflows=[StuckWorkflow], activities=[always_fails], interceptors=interceptors
    ):
        stuck = await client.start_workflow(StuckWorkflow.run, id=f"stuck-{uuid.uuid4()}", task_queue=tq)

        async def waiting(i: int) -> None:
            await client.start_workflow(
                "BenchWaiting", id=f"waiting-{i}", task_queue=tq, start_delay=timedelta(hours=1)
            )

        t0 = time.perf_counter()
        await harness.bounded(range(n), waiting, 100)
        s.add("running journeys started after it", f"{n} in {time.perf_counter() - t0:.1f}s")
        app = create_app(st.settings, reconcile_every=None)
        ops = await harness.api_key(st, "ops")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b", timeout=300) as http,
        ):
            times, found, status = [], False, 0
            for _ in range(3):
                t0 = time.perf_counter()
                r = await http.get("/ops/retrying?older_than_minutes=0.01", headers=ops)
                times.append(time.perf_counter() - t0)
                status = r.status_code
                found = r.status_code == 200 and any(row["workflow_id"] == stuck.id for row in r.json())
                log(f"  scan: {status} in {times[-1]:.1f}s, stuck journey listed: {found}")
        s.add("GET /ops/retrying", harness.latency(times))
        s.add("the stuck journey listed", f"{found} (status {status})")
        count = await client.count_workflows(f"TaskQueue = '{tq}' AND ExecutionStatus = 'Running'")
        s.add("running journeys on the task queue", f"{count.count}")
    return [s]
