"""The health sweep: `health-sweep`, one per program (a read model fed by the events).

Every `health.sweep_seconds` it runs one activity (journeys/health/activities.py `sweep`): the
events published since its cursor whose type moves health (every journey's `health_events`),
their distinct partners (at most `health.sweep_batch` a pass; a full batch is followed at once)
scored with the same code as `health-{partner}`'s evaluation, a changed score recorded and
published as `partner.health_changed`, and `health-{partner}` told (signal `swept`) only when the
change may open or close an early-warning episode. So an event costs a share of a pass, not a
workflow evaluation; the entity workflows keep the alerts, the episodes, the re-engagement and
their own cadence (`health.evaluate_seconds`) as the safety net. The cursor (the seq under which
every event is handled, and the handled seqs above it) is the workflow's state; it continues as
new every SWEEP_TICKS passes. Started by the policy hook (manifest `on_policy_saved`) while
`health.watch` is on and `health.sweep_seconds` is not 0; it ends when the policy turns it off.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import PROGRESS
    from journeys.health.domain import HealthActivity, SweepInput, SweepResult, SweepTick
    from workflows.kit import RETRY

SWEEP_TICKS = 200  # passes per run (then continue-as-new: about 2,000 history events)
# One pass: a batch of at most health.sweep_batch partners.
PASS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RETRY,
    "summary": "score the partners of the events since the last pass",
}


@workflow.defn
class HealthSweepWorkflow:
    @workflow.init
    def __init__(self, inp: SweepInput) -> None:
        self._totals = inp

    @workflow.query(name=PROGRESS)
    def progress(self) -> SweepInput:
        return self._totals

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepInput:
        t = self._totals
        for _ in range(SWEEP_TICKS):
            tick = SweepTick(after=t.after, seen=t.seen)
            out = await workflow.execute_activity(HealthActivity.SWEEP, tick, result_type=SweepResult, **PASS)
            t = self._totals = t.model_copy(
                update={
                    "after": out.after,
                    "seen": out.seen,
                    "ticks": t.ticks + 1,
                    "events": t.events + out.events,
                    "partners": t.partners + out.partners,
                    "changed": t.changed + out.changed,
                    "signalled": t.signalled + out.signalled,
                }
            )
            if out.every_seconds <= 0:  # the policy has the sweep off: the hook starts it again
                return t
            if not out.more:
                await workflow.sleep(timedelta(seconds=out.every_seconds), summary="the next pass")
        workflow.continue_as_new(t)
