"""Quarterly business reviews: the cycle `qbr-cycle-{period}`, which starts each partner's QBR.

The cycle (started by the Temporal Schedule at the policy's cadence, or by ops for a backfill)
lists the program's partners page by page and starts one QBR per partner with a sliding window
of QBRs being prepared (the batch_sliding_window shape of temporalio's samples): at most
`qbr.cycle_window` are preparing at once, each tells the cycle when it is prepared, and the
cycle continues as new after each page so that its history stays short however many partners
there are. A QBR that already exists (a second run for the period) is counted, not started.

Since `CYCLE_STARTS_WORKFLOWS_PATCH` the QBRs are started by an activity, as many at once as the
window has room for, as workflows of their own (before: one child workflow each, abandoned when
the cycle closed). A QBR outlives its cycle by weeks: as a child its completion was sent to a
cycle that might be completing at that instant (the test server then refused the cycle's last
workflow task and could stall, docs/simulator.md); now nothing but the `prepared` signal links
them. The scheduled run starts the cycle through an activity in the same way.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.journeys import LOAD_POLICY, PROGRESS, SA_JOURNEY, SA_JOURNEY_STATE, LoadPolicyInput
    from domain.policy import VersionedPolicy
    from journeys.qbr.domain import (
        CYCLE_STARTS_WORKFLOWS_PATCH,
        JOURNEY,
        PREPARED,
        CycleInput,
        CycleProgress,
        CycleResult,
        ListPartnersInput,
        PartnerPage,
        Prepared,
        QbrActivity,
        QbrInput,
        StartedQbrs,
        StartQbrsInput,
        cycle_id,
        qbr_id,
    )
    from journeys.qbr.periods import period_of, shift
    from journeys.qbr.workflow import QbrWorkflow
    from workflows.kit import ACTIVITY_TIMEOUT, RETRY


@workflow.defn
class QbrCycleWorkflow:
    """`qbr-cycle-{period}`: one page of partners per run, a sliding window of QBRs being
    prepared, continue-as-new per page. Started without a period (by the schedule), it starts
    the cycle of the quarter before its time, once."""

    @workflow.init
    def __init__(self, inp: CycleInput) -> None:
        self._inp = inp
        self._in_flight: list[str] = list(inp.in_flight)
        self._early: set[str] = set()  # prepared before their start resolved
        self._started, self._prepared, self._existing = inp.started, inp.prepared, inp.existing
        self._max = inp.max_in_flight
        self._done = False

    @workflow.signal(name=PREPARED)
    def prepared(self, msg: Prepared) -> None:
        if msg.workflow_id in self._in_flight:
            self._in_flight.remove(msg.workflow_id)
            self._prepared += 1
        else:
            self._early.add(msg.workflow_id)

    @workflow.query(name=PROGRESS)
    def progress(self) -> CycleProgress:
        return CycleProgress(
            period=self._inp.period,
            started=self._started,
            prepared=self._prepared,
            existing=self._existing,
            in_flight=len(self._in_flight),
            max_in_flight=self._max,
            pages=self._inp.pages,
            done=self._done,
        )

    @workflow.run
    async def run(self, inp: CycleInput) -> CycleResult:
        snap = await workflow.execute_activity(
            LOAD_POLICY,
            LoadPolicyInput(version=inp.policy_version),
            result_type=VersionedPolicy,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"read the program policy (version {inp.policy_version or 'current'})",
        )
        q = snap.policy.qbr
        independent = workflow.patched(CYCLE_STARTS_WORKFLOWS_PATCH)
        if inp.period is None:
            if independent:
                return await self._trigger_by_activity(shift(period_of(workflow.now(), q.time_zone), -1), snap.version)
            return await self._trigger(shift(period_of(workflow.now(), q.time_zone), -1), snap.version)
        period = inp.period
        workflow.upsert_search_attributes([SA_JOURNEY.value_set(JOURNEY), SA_JOURNEY_STATE.value_set("cycle_running")])
        page = await workflow.execute_activity(
            QbrActivity.LIST_PARTNERS,
            ListPartnersInput(after=inp.after, limit=q.cycle_page_size),
            result_type=PartnerPage,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"list page {inp.pages + 1} of the partners",
        )
        if independent:
            await self._start_page(page, period, snap.version, q.cycle_window)
        else:
            await self._start_page_as_children(page, period, snap.version, q.cycle_window)
        if len(page.ids) == q.cycle_page_size:  # there may be more: the next page in a new run
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(
                inp.model_copy(
                    update={
                        "policy_version": snap.version,
                        "after": page.ids[-1],
                        "in_flight": list(self._in_flight),
                        "started": self._started,
                        "prepared": self._prepared,
                        "existing": self._existing,
                        "pages": inp.pages + 1,
                        "max_in_flight": self._max,
                    }
                )
            )
        await workflow.wait_condition(lambda: not self._in_flight)
        self._done = True
        workflow.upsert_search_attributes([SA_JOURNEY_STATE.value_set("cycle_done")])
        return CycleResult(period=period, started=self._started, existing=self._existing)

    async def _start_page(self, page: PartnerPage, period: str, version: int, window: int) -> None:
        """The page's QBRs, started by an activity as many at a time as the window has room for."""
        todo = self._qbrs(page, period, version)
        while todo:
            await workflow.wait_condition(lambda: len(self._in_flight) < window)
            room = window - len(self._in_flight)
            batch, todo = todo[:room], todo[room:]
            out = await workflow.execute_activity(
                QbrActivity.START_QBRS,
                StartQbrsInput(qbrs=batch),
                result_type=StartedQbrs,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary=f"start {len(batch)} QBRs ({self._started + self._existing + len(batch)} of this cycle)",
            )
            for started, one in zip(out.started, batch, strict=True):
                self._count_start(qbr_id(one.partner_id, period), started)

    async def _start_page_as_children(self, page: PartnerPage, period: str, version: int, window: int) -> None:
        """Before `CYCLE_STARTS_WORKFLOWS_PATCH`: one child workflow per QBR (kept for the runs
        that started so)."""
        for one in self._qbrs(page, period, version):
            await workflow.wait_condition(lambda: len(self._in_flight) < window)
            wid = qbr_id(one.partner_id, period)
            try:
                await workflow.start_child_workflow(
                    QbrWorkflow.run,
                    one,
                    id=wid,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=f"QBR {period}: {one.partner_name}",
                )
            except WorkflowAlreadyStartedError:
                self._count_start(wid, False)
                continue
            self._count_start(wid, True)

    @staticmethod
    def _qbrs(page: PartnerPage, period: str, version: int) -> list[QbrInput]:
        me = workflow.info().workflow_id
        return [
            QbrInput(
                partner_id=pid, partner_name=name, coverage=coverage, period=period, policy_version=version, cycle_id=me
            )
            for pid, coverage, name in zip(page.ids, page.coverage, page.names, strict=True)
        ]

    def _count_start(self, wid: str, started: bool) -> None:
        if not started:
            self._existing += 1
            return
        self._started += 1
        if wid in self._early:
            self._early.discard(wid)
            self._prepared += 1
        else:
            self._in_flight.append(wid)
            self._max = max(self._max, len(self._in_flight))

    async def _trigger_by_activity(self, period: str, version: int) -> CycleResult:
        """Started by the schedule: the period's cycle, unless it exists already (then nothing)."""
        started = await workflow.execute_activity(
            QbrActivity.START_CYCLE,
            CycleInput(period=period, policy_version=version),
            result_type=bool,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"start the QBR cycle {period}",
        )
        return CycleResult(period=period, started=0, existing=0, triggered=started)

    async def _trigger(self, period: str, version: int) -> CycleResult:
        """Before `CYCLE_STARTS_WORKFLOWS_PATCH`: the cycle as a child (kept for the runs that started so)."""
        try:
            await workflow.start_child_workflow(
                QbrCycleWorkflow.run,
                CycleInput(period=period, policy_version=version),
                id=cycle_id(period),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"QBR cycle {period}",
            )
        except WorkflowAlreadyStartedError:
            return CycleResult(period=period, started=0, existing=0, triggered=False)
        return CycleResult(period=period, started=0, existing=0, triggered=True)
