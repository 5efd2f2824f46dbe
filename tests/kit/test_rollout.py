"""A rollout of changed workflow code, rehearsed on the dev server as deploy/README.md tells the
operator to run it: the old worker runs a journey; a worker with the new code (the change behind
`workflow.patched`) starts beside it on the same task queue; the old one drains and stops; the
running journey is finished by the new worker on the old path, a new journey takes the new path;
the patch may be deprecated only once the `temporal workflow list` query finds no run that started
before the rollout, and a deprecated build would not replay the old journey's history."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from tests.helpers.waiting import eventually

PATCH = "rehearsal-new-step"
STEPS: dict[str, list[str]] = {}  # workflow id -> the steps it ran, in order (the activities' effect)


@activity.defn(name="rehearsal_old_step")
async def old_step(workflow_id: str, name: str) -> None:
    STEPS.setdefault(workflow_id, []).append(name)


@activity.defn(name="rehearsal_new_step")  # the change: another activity (a command the old history lacks)
async def new_step(workflow_id: str, name: str) -> None:
    STEPS.setdefault(workflow_id, []).append(name)


class _Journey:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal(name="go")
    def go(self) -> None:
        self._go = True

    async def _step(self, name: str) -> None:
        await workflow.execute_activity(
            new_step if name.startswith("new") else old_step,
            args=[workflow.info().workflow_id, name],
            start_to_close_timeout=timedelta(seconds=10),
        )


@workflow.defn(name="RolloutRehearsal", sandboxed=False)
class OldJourney(_Journey):
    """The code in production before the rollout."""

    @workflow.run
    async def run(self) -> str:
        await self._step("old-before")
        await workflow.wait_condition(lambda: self._go)
        await self._step("old-after")
        return "old"


@workflow.defn(name="RolloutRehearsal", sandboxed=False)
class PatchedJourney(_Journey):
    """The new code: the change behind `workflow.patched`, the old path kept for running journeys."""

    @workflow.run
    async def run(self) -> str:
        new = workflow.patched(PATCH)
        await self._step("new-before" if new else "old-before")
        await workflow.wait_condition(lambda: self._go)
        await self._step("new-after" if new else "old-after")
        return "new" if new else "old"


@workflow.defn(name="RolloutRehearsal", sandboxed=False)
class DeprecatedJourney(_Journey):
    """The build after the patch is deprecated: the old path removed."""

    @workflow.run
    async def run(self) -> str:
        workflow.deprecate_patch(PATCH)
        await self._step("new-before")
        await workflow.wait_condition(lambda: self._go)
        await self._step("new-after")
        return "new"


async def _worker(client: Client, task_queue: str, journey: type, identity: str) -> Worker:
    """A worker of its own connection, as each pod has (one client may not run two workers on a queue)."""
    own = await Client.connect(client.service_client.config.target_host, namespace=client.namespace)
    return Worker(
        own,
        task_queue=task_queue,
        workflows=[journey],
        activities=[old_step, new_step],
        identity=identity,
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=0,  # every task replays the history: what a pod that never saw the run does
    )


def _task_workers(history: WorkflowHistory) -> set[str]:
    return {
        e.workflow_task_completed_event_attributes.identity
        for e in history.events
        if e.HasField("workflow_task_completed_event_attributes")
    }


def _open_before(rollout_at: datetime, task_queue: str) -> str:
    """deploy/README.md's query: the runs still open that started before the rollout."""
    before = rollout_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f"WorkflowType = 'RolloutRehearsal' AND ExecutionStatus = 'Running' AND StartTime < '{before}'"
        f" AND TaskQueue = '{task_queue}'"
    )


def _count(client: Client, query: str, expected: int):
    async def check() -> bool:
        return (await client.count_workflows(query)).count == expected

    return check


async def test_a_patched_rollout_keeps_running_journeys_on_the_old_path_and_starts_new_ones_on_the_new(
    dev_env, task_queue
):
    client = dev_env.client
    running, fresh = f"rehearsal-{uuid.uuid4()}", f"rehearsal-{uuid.uuid4()}"

    # 1. Before the rollout: the old worker runs a journey up to its wait.
    old = await _worker(client, task_queue, OldJourney, "old-worker")
    old_running = asyncio.create_task(old.run())
    try:
        old_handle = await client.start_workflow("RolloutRehearsal", id=running, task_queue=task_queue)
        await eventually(lambda: STEPS.get(running) == ["old-before"])
        rollout_at = datetime.now(UTC)
        # 2. The new worker starts beside it on the same task queue; then the old one drains
        #    (shutdown: it finishes the tasks it holds, stops polling and leaves).
        async with await _worker(client, task_queue, PatchedJourney, "new-worker"):
            await old.shutdown()
            await old_running
            # 3. Only new code polls now: a new journey takes the new path; the running one, taken
            #    over by the new worker, replays its history on the new code and stays on the old path.
            new_handle = await client.start_workflow("RolloutRehearsal", id=fresh, task_queue=task_queue)
            await eventually(lambda: STEPS.get(fresh) == ["new-before"])
            # The patch may not be deprecated yet: a run that started before the rollout is open.
            await eventually(_count(client, _open_before(rollout_at, task_queue), 1), what="the open old run listed")
            await old_handle.signal("go")
            await new_handle.signal("go")
            assert await asyncio.wait_for(old_handle.result(), 20) == "old"  # a non-determinism would hang it
            assert await asyncio.wait_for(new_handle.result(), 20) == "new"
    finally:
        if not old_running.done():
            await old.shutdown()
    assert STEPS[running] == ["old-before", "old-after"]  # nothing ran twice, nothing skipped
    assert STEPS[fresh] == ["new-before", "new-after"]
    old_history, new_history = await old_handle.fetch_history(), await new_handle.fetch_history()
    assert _task_workers(old_history) == {"old-worker", "new-worker"}  # the new worker finished it
    assert _task_workers(new_history) == {"new-worker"}

    # 4. When may the patch be deprecated? When this query (the one deploy/README.md gives to
    #    `temporal workflow list`) finds no run that started before the rollout.
    await eventually(_count(client, _open_before(rollout_at, task_queue), 0), what="no open old run")
    # Deprecating earlier would break the journeys still on the old path: their history does not
    # replay on the deprecated build, while the new journeys' histories do.
    replayer = Replayer(workflows=[DeprecatedJourney], workflow_runner=UnsandboxedWorkflowRunner())
    assert (await replayer.replay_workflow(new_history, raise_on_replay_failure=False)).replay_failure is None
    assert (await replayer.replay_workflow(old_history, raise_on_replay_failure=False)).replay_failure is not None
