"""The Temporal Schedule of the QBR cycle: on the first day of each quarter (the policy's
`qbr.cycle_months`) at midnight in the program's time zone, it starts `QbrCycleWorkflow`
without a period; that run starts `qbr-cycle-{period}` for the quarter before, once (a second
trigger for the same period starts nothing). Created or updated by the worker at start, by
`PUT /policy` as soon as a new version is stored, and by every worker's policy watch when it
sees a newer version (should the API's attempt have failed): the schedule notes the policy version
it follows, and an older version never replaces a newer one."""

from __future__ import annotations

import logging

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
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.policy import ProgramPolicy
from journeys.qbr.cycle import QbrCycleWorkflow
from journeys.qbr.domain import CYCLE, CycleInput

SCHEDULE_ID = f"{CYCLE}-schedule"
NOTE = "follows policy version "
log = logging.getLogger(__name__)


def qbr_schedule(policy: ProgramPolicy, task_queue: str, version: int | None = None) -> Schedule:
    q = policy.qbr
    return Schedule(
        action=ScheduleActionStartWorkflow(
            QbrCycleWorkflow.run,
            CycleInput(),
            id=f"{CYCLE}-scheduled",
            task_queue=task_queue,
            static_summary="QBR cycle (scheduled): starts the cycle of the quarter before",
        ),
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
        state=ScheduleState(note=f"{NOTE}{version}" if version is not None else None),
    )


def followed_version(schedule: Schedule) -> int | None:
    note = schedule.state.note or ""
    return int(note.removeprefix(NOTE)) if note.startswith(NOTE) and note.removeprefix(NOTE).isdigit() else None


async def ensure_qbr_schedule(
    client: Client, policy: ProgramPolicy, task_queue: str, version: int | None = None
) -> ScheduleHandle:
    """Create the schedule, or bring an existing one in line with the policy (idempotent); with a
    `version`, a schedule that already follows a newer one is left as it is."""
    schedule = qbr_schedule(policy, task_queue, version)
    try:
        return await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(SCHEDULE_ID)

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
            followed = followed_version(current.description.schedule)
            if version is not None and followed is not None and followed > version:
                return None
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        return handle
