"""The Temporal Schedule of the QBR cycle: on the first day of each quarter (the policy's
`qbr.cycle_months`) at midnight in the program's time zone, it starts `QbrCycleWorkflow`
without a period; that run starts `qbr-cycle-{period}` for the quarter before, once (a second
trigger for the same period starts nothing). Created or updated by the worker at start."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.policy import ProgramPolicy
from domain.qbr import CYCLE, CycleInput
from store import repo
from workflows.qbr import QbrCycleWorkflow

SCHEDULE_ID = f"{CYCLE}-schedule"


def qbr_schedule(policy: ProgramPolicy, task_queue: str) -> Schedule:
    q = policy.qbr
    return Schedule(
        action=ScheduleActionStartWorkflow(
            QbrCycleWorkflow.run,
            CycleInput(),
            id=f"{CYCLE}-scheduled",
            task_queue=task_queue,
            static_summary="QBR cycle (scheduled): starts the cycle of the quarter before",
        ),  # fmt: skip
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    month=[ScheduleRange(m) for m in q.cycle_months],
                    day_of_month=[ScheduleRange(1)],
                    hour=[ScheduleRange(0)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                    comment="the first day of each quarter",
                )
            ],
            time_zone_name=q.time_zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_qbr_schedule(client: Client, policy: ProgramPolicy, task_queue: str) -> ScheduleHandle:
    """Create the schedule, or bring an existing one in line with the policy (idempotent)."""
    schedule = qbr_schedule(policy, task_queue)
    try:
        return await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(SCHEDULE_ID)

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        return handle


async def ensure_qbr_schedule_from_store(
    client: Client, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> ScheduleHandle:
    """`ensure_qbr_schedule` with the current policy version (the worker does this at start)."""
    async with sessionmaker() as session:
        policy = (await repo.current_policy(session)).policy
    return await ensure_qbr_schedule(client, policy, task_queue)
