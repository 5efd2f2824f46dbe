"""The time-skipping test server goes on skipping after a QBR cycle (docs/simulator.md).

The server takes its time-skipping lock when a child workflow closes and releases it when the
parent records that; a parent closed without recording it leaves the lock taken, and from then on
time passes only in real time. The QBR cycle once started the partners' QBRs (and the scheduled
run the cycle) as abandoned children that outlived their parents, so the simulator had to release
those locks itself; since `CYCLE_STARTS_WORKFLOWS_PATCH` it starts them through an activity, as
workflows of their own, and a day of simulated time passes in milliseconds after a whole cycle."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowHandle

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.qbr.domain import CYCLE_WORKFLOW, CycleInput, CycleResult, cycle_id
from journeys.qbr.periods import period_of, shift
from tests.helpers.factories import make_partner
from tests.qbr.factories import save_policy
from worker.main import build_worker


async def _day_passes(env, within: float) -> bool:
    """A day of skipped time passes within `within` real seconds (milliseconds while the server skips)."""
    try:
        await asyncio.wait_for(env.sleep(timedelta(days=1)), timeout=within)
    except TimeoutError:
        return False
    return True


async def test_a_scheduled_qbr_cycle_leaves_the_clock_skipping(ts_env, sessionmaker, base_settings, task_queue):
    policy = ProgramPolicy().model_copy(deep=True)
    policy.qbr.cycle_window, policy.qbr.cycle_page_size = 2, 2
    await save_policy(sessionmaker, policy)
    for i in range(3):
        await make_partner(sessionmaker, tier=Tier.registered, name=f"Skipping {i}")
    period = shift(period_of(await ts_env.get_current_time(), "UTC"), -1)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        # as the schedule starts it: no period, the run starts the quarter before its time
        trigger: WorkflowHandle = await ts_env.client.start_workflow(
            CYCLE_WORKFLOW,
            CycleInput(),
            id=f"{cycle_id(period)}-scheduled",
            task_queue=task_queue,
            result_type=CycleResult,
        )
        assert (await trigger.result()).triggered
        cycle = await ts_env.client.get_workflow_handle(cycle_id(period), result_type=CycleResult).result()
        assert (cycle.started, cycle.existing) == (3, 0)
        # The trigger closed before its cycle, the cycle before its QBRs: no lock is left taken.
        assert await _day_passes(ts_env, within=20)
        assert await _day_passes(ts_env, within=20)
