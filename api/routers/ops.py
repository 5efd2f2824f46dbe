"""What ops watch: journeys waiting for them after a permanent failure (and resuming them), and
journeys whose steps keep failing transiently."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel
from sqlalchemy import delete, select, tuple_
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.deps import OpsDep, SessionDep, TemporalDep
from api.openapi import TEMPORAL_503
from api.routemeta import route_meta
from domain.journeys import RESUME, Resume
from store import repo
from store.models import JourneyRecord
from store.models.ops import RetryingStep

router = APIRouter(prefix="/ops", tags=["ops"])
WORKFLOW_ID = r"^[a-z]{2,20}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class AttentionOut(BaseModel):
    workflow_id: str
    journey: str
    partner_id: str
    state: str
    attention: dict[str, Any]
    updated_at: datetime


class ResumeOut(BaseModel):
    workflow_id: str
    resumed: bool


class RetryingOut(BaseModel):
    workflow_id: str
    activity: str
    attempt: int
    failing_since: datetime
    last_failure: str | None
    last_started: datetime | None


@router.get("/attention", response_model=list[AttentionOut])
async def needing_attention(principal: OpsDep, session: SessionDep, limit: int = Query(100, ge=1, le=1000)):
    """Every journey waiting for ops: the step that failed for good, the error, since when."""
    rows = await session.scalars(
        select(JourneyRecord)
        .where(JourneyRecord.attention.is_not(None))
        .order_by(JourneyRecord.updated_at)
        .limit(limit)
    )
    return [
        AttentionOut(
            workflow_id=r.workflow_id,
            journey=r.journey,
            partner_id=str(r.partner_id),
            state=r.state,
            attention=r.attention or {},
            updated_at=r.updated_at,
        )
        for r in rows
    ]


@router.post(
    "/journeys/{workflow_id}/resume",
    response_model=ResumeOut,
    status_code=202,
    openapi_extra=route_meta(
        {
            409: "the journey is not waiting for ops, or not running",
            503: TEMPORAL_503,
        }
    ),
)
async def resume(
    principal: OpsDep, session: SessionDep, temporal: TemporalDep, workflow_id: str = Path(pattern=WORKFLOW_ID)
):
    """The cause is fixed: the journey runs the failed step again."""
    record = await session.get(JourneyRecord, workflow_id)
    if record is None:
        raise HTTPException(404, detail=f"no journey {workflow_id}")
    if record.attention is None:
        raise HTTPException(409, detail=f"journey {workflow_id} is not waiting for ops (state {record.state})")
    await session.close()
    try:
        await temporal.get_workflow_handle(workflow_id).signal(RESUME, Resume(by=principal.actor))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(409, detail=f"journey {workflow_id} is not running") from err
        raise
    return ResumeOut(workflow_id=workflow_id, resumed=True)


DESCRIBE_AT_ONCE = 32  # indexed journeys described at the same time
CANDIDATES = 5000  # indexed steps looked at, oldest first


@router.get(
    "/retrying",
    response_model=list[RetryingOut],
    openapi_extra=route_meta({503: TEMPORAL_503, 504: "Temporal did not list the running journeys in time"}),
)
async def retrying(
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    older_than_minutes: float | None = Query(None, gt=0, le=10080),
    limit: int = Query(100, ge=1, le=500),
):
    """Running journeys whose current step has been failing transiently (SMTP or the database down,
    ...) for longer than the policy's `ops.retrying_minutes` (or `older_than_minutes`), with its
    attempts and last error: up to `limit` steps, oldest first. The worker indexes every step being
    retried (`retrying_steps`), so a stuck journey is found among any number of running ones;
    Temporal says whether each is still retrying and with which error."""
    if older_than_minutes is None:
        older_than_minutes = (await repo.current_policy(session)).policy.ops.retrying_minutes
    cutoff = datetime.now(UTC) - timedelta(minutes=older_than_minutes)
    candidates = (
        await session.scalars(
            select(RetryingStep)
            .where(RetryingStep.failing_since <= cutoff)
            .order_by(RetryingStep.failing_since)
            .limit(CANDIDATES)
        )
    ).all()
    await session.close()
    at_once = asyncio.Semaphore(DESCRIBE_AT_ONCE)
    stale: list[RetryingStep] = []

    async def look(step: RetryingStep) -> list[_Found]:
        async with at_once:
            found = [
                r
                for r in await _retrying_steps(temporal, step.workflow_id, step.run_id, cutoff)
                if r.activity_id == step.activity_id
            ]
        if not found:
            stale.append(step)
        return found

    try:
        async with asyncio.timeout(20):
            found = [r for rows in await asyncio.gather(*(look(c) for c in candidates)) for r in rows]
            found += await _failing_workflow_tasks(temporal, cutoff, limit)
    except TimeoutError as err:  # unhandled, it was a 500
        raise HTTPException(
            504, detail="Temporal did not describe the retrying journeys within 20 s; retry later"
        ) from err
    if stale:  # the journey ended, or its step ended while the worker could not reach the database
        await session.execute(
            delete(RetryingStep).where(
                tuple_(RetryingStep.workflow_id, RetryingStep.activity_id).in_(
                    [(s.workflow_id, s.activity_id) for s in stale]
                )
            )
        )
        await session.commit()
    found.sort(key=lambda r: r.failing_since)
    return [RetryingOut(**r.model_dump(exclude={"activity_id"})) for r in found[:limit]]


class _Found(RetryingOut):
    activity_id: str


WORKFLOW_TASK = "workflow task"  # the `activity` of a journey whose own code fails (not one of its steps)
# Temporal marks a run whose workflow task keeps failing with this search attribute once the cluster's
# `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute` is set (our dev servers set 2;
# docs/operations.md says how for a cluster): found by one visibility query among any number of runs.
REPORTED_PROBLEMS = "ExecutionStatus = 'Running' AND TemporalReportedProblems IS NOT NULL"


async def _failing_workflow_tasks(temporal: Any, cutoff: datetime, limit: int) -> list[_Found]:
    out = []
    async for wf in temporal.list_workflows(REPORTED_PROBLEMS, limit=limit):
        handle = temporal.get_workflow_handle(wf.id, run_id=wf.run_id)
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        wedged = await _failing_workflow_task(handle, description.raw_description, cutoff)
        if wedged is not None:
            out.append(wedged)
    return out


async def _failing_workflow_task(handle: Any, raw: Any, cutoff: datetime) -> _Found | None:
    """A journey whose workflow task keeps failing (its code cannot run on its history): listed
    like a failing step, with `activity` = "workflow task" and the last failure Temporal recorded."""
    if not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt < 2:
        return None
    task = raw.pending_workflow_task
    since = task.original_scheduled_time.ToDatetime(tzinfo=UTC)
    if since > cutoff:
        return None
    failure = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure.message[:2000]
    started = task.started_time.ToDatetime(tzinfo=UTC) if task.HasField("started_time") else None
    return _Found(
        workflow_id=handle.id,
        activity_id="",
        activity=WORKFLOW_TASK,
        attempt=task.attempt,
        failing_since=since,
        last_failure=failure,
        last_started=started,
    )


async def _retrying_steps(temporal: Any, workflow_id: str, run_id: str | None, cutoff: datetime) -> list[_Found]:
    """The steps of one journey's run retrying since before `cutoff` (none if it ended)."""
    handle = temporal.get_workflow_handle(workflow_id, run_id=run_id or None)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return []
    retrying = [p for p in description.raw_description.pending_activities if p.attempt >= 2]
    first_scheduled = await _first_scheduled(handle, {p.activity_id for p in retrying}) if retrying else {}
    out = []
    for pending in retrying:
        scheduled = first_scheduled.get(pending.activity_id)
        if scheduled is None or scheduled > cutoff:
            continue
        failure = pending.last_failure.message if pending.HasField("last_failure") else None
        last = pending.last_started_time
        started = last.ToDatetime(tzinfo=UTC) if pending.HasField("last_started_time") else None
        out.append(
            _Found(
                workflow_id=workflow_id,
                activity_id=pending.activity_id,
                activity=pending.activity_type.name,
                attempt=pending.attempt,
                failing_since=scheduled,
                last_failure=failure,
                last_started=started,
            )
        )
    return out


async def _first_scheduled(handle: Any, activity_ids: set[str]) -> dict[str, datetime]:
    """When each activity was first scheduled (a pending activity only tells its next attempt)."""
    found: dict[str, datetime] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity_id = event.activity_task_scheduled_event_attributes.activity_id
            if activity_id in activity_ids:
                found[activity_id] = event.event_time.ToDatetime(tzinfo=UTC)
    return found
