"""The bare-Temporal baselines the journeys are measured against, in a module of their own, as
hand-written workflows would be: `BaselineWorkflow` (`harness.run_baseline`, every journey's) and
the QBR cycle's fan-out of no-op children (bench/qbr_cycle.py, part B).

Temporal's sandbox imports a workflow's module again for every new run. Until session 54 these
workflows lived in bench/harness.py and bench/qbr_cycle.py, so each baseline run also rebuilt
those modules' pydantic models and dataclasses: about 4 ms of CPU a run (1.1 ms here against
5.7-6.8 ms there) that no bare workflow pays, and that the journeys were measured against
(bench/README.md, "session 54"). Here the module holds the workflows and their no-op activities
only; their messages come from the harness and the QBR benchmark, passed through, as a journey's
workflow imports its `domain.py` (tests/kit/test_worker_runner.py holds both to that)."""

from __future__ import annotations

from typing import Any

from temporalio import activity, workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from bench.harness import (
        BASELINE_RETRY,
        BASELINE_SIGNAL,
        BASELINE_TIMEOUT,
        BASELINE_UPDATE,
        BaselineInput,
        BaselineMessage,
        BaselineResult,
        NoopInput,
        NoopResult,
    )
    from bench.qbr_cycle import ChildInput, Done, FanoutInput


@activity.defn(name="bench_noop")
async def noop(inp: NoopInput) -> NoopResult:
    return NoopResult(applied=True)


async def noops(execute: Any, fn: Any, steps: range) -> None:
    """`fn` once per step, one after the other, with the journeys' timeout and retry policy."""
    wid = workflow.info().workflow_id
    for step in steps:
        await execute(
            fn,
            NoopInput(journey_id=wid, step=step),
            start_to_close_timeout=BASELINE_TIMEOUT,
            retry_policy=BASELINE_RETRY,
        )


@workflow.defn(name="BenchBaselineWorkflow")
class BaselineWorkflow:
    """The minimum a journey of the same shape costs on bare Temporal: its activities (no-op,
    pydantic in and out, the same timeout and retry policy), its signals and its updates (each
    answered once the activities ran), no policy read, no search attributes, no codec work."""

    def __init__(self) -> None:
        self._signals = 0
        self._updates = 0
        self._ran = False

    @workflow.signal(name=BASELINE_SIGNAL)
    def signal(self, msg: BaselineMessage) -> None:
        self._signals += 1

    @workflow.update(name=BASELINE_UPDATE)
    async def update(self, msg: BaselineMessage) -> BaselineResult:
        self._updates += 1
        await workflow.wait_condition(lambda: self._ran)
        return BaselineResult(activities=0, signals=self._signals)

    @workflow.run
    async def run(self, inp: BaselineInput) -> BaselineResult:
        await noops(workflow.execute_activity, noop, range(inp.activities))
        await noops(workflow.execute_local_activity, noop, range(inp.activities, inp.activities + inp.local_activities))
        self._ran = True
        await workflow.wait_condition(lambda: self._signals >= inp.signals and self._updates >= inp.updates)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BaselineResult(activities=inp.activities, signals=self._signals)


# --------------------------------------------------------------------------- the QBR cycle's (bench/qbr_cycle.py)


@activity.defn(name="bench_qbr_noop")
async def qbr_noop(inp: NoopInput) -> NoopResult:
    return NoopResult(applied=True)


@workflow.defn(name="BenchQbrChild")
class QbrChildWorkflow:
    @workflow.run
    async def run(self, inp: ChildInput) -> None:
        await noops(workflow.execute_activity, qbr_noop, range(inp.activities))
        wid = workflow.info().workflow_id
        await workflow.get_external_workflow_handle(inp.parent).signal("done", Done(workflow_id=wid))


@workflow.defn(name="BenchQbrFanout")
class QbrFanoutWorkflow:
    @workflow.init
    def __init__(self, inp: FanoutInput) -> None:
        self._in_flight = list(inp.in_flight)
        self._early: set[str] = set()

    @workflow.signal(name="done")
    def done(self, msg: Done) -> None:
        if msg.workflow_id in self._in_flight:
            self._in_flight.remove(msg.workflow_id)
        else:
            self._early.add(msg.workflow_id)

    @workflow.run
    async def run(self, inp: FanoutInput) -> int:
        me = workflow.info().workflow_id
        end = min(inp.offset + inp.page, inp.total)
        for i in range(inp.offset, end):
            await workflow.wait_condition(lambda: len(self._in_flight) < inp.window)
            wid = f"{inp.prefix}-{i}"
            await workflow.start_child_workflow(
                QbrChildWorkflow.run,
                ChildInput(parent=me, activities=inp.activities),
                id=wid,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
            if wid in self._early:
                self._early.discard(wid)
            else:
                self._in_flight.append(wid)
        if end < inp.total:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(inp.model_copy(update={"offset": end, "in_flight": list(self._in_flight)}))
        await workflow.wait_condition(lambda: not self._in_flight)
        return inp.total
