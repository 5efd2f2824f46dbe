"""CAM handover: `cam-handover-{handover id}` (POST /cams/{id}/handover), a platform workflow
beside the webhook streams (a CAM's, not a partner's: the journey manifest names workflows by a
partner's entity, so it is not a journey).

For each partner, in order: move it (activity: its CAM and coverage version change, its journeys
behind that version are marked told and returned), tell each of those journeys the new coverage
(a signal from this workflow: in its history, so a crashed worker's successor never sends it
twice and never forgets one), then queue and send its introduction email. At the end, the
receiving CAM's handover pack, then completion (state, audit row, events). A replay after a crash
resumes where the history ends; every activity is idempotent on the handover's step."""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.handover import (
        HANDOVER_WORKFLOW,
        HandoverActivity,
        HandoverInput,
        HandoverRef,
        HandoverStep,
        Moved,
        step_key,
    )
    from domain.journeys import CHANGE_COVERAGE, SEND_NOTIFICATIONS, NotifyResult, SendInput, SendResult, StepResult
    from workflows.kit import ACTIVITY_TIMEOUT, RETRY

R = TypeVar("R")


@workflow.defn(name=HANDOVER_WORKFLOW)
class HandoverWorkflow:
    @workflow.init
    def __init__(self, inp: HandoverInput) -> None:
        self._done = 0

    async def _step(self, name: str, arg: BaseModel, result_type: type[R], summary: str) -> R:
        result: R = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=summary,
        )
        return result

    @workflow.run
    async def run(self, inp: HandoverInput) -> None:
        total = len(inp.partner_ids)
        for partner_id in inp.partner_ids:
            workflow.set_current_details(f"handing over partner {self._done + 1} of {total}")
            step = HandoverStep(handover_id=inp.handover_id, partner_id=partner_id)
            moved = await self._step(HandoverActivity.MOVE, step, Moved, f"move partner {partner_id}")
            if moved.moved:
                for wid in moved.workflow_ids:
                    try:
                        await workflow.get_external_workflow_handle(wid).signal(CHANGE_COVERAGE, moved.coverage)
                    except FailureError:
                        workflow.logger.info("%s has ended: nothing to tell", wid)
                await self._step(HandoverActivity.INTRODUCE, step, NotifyResult, "queue the partner's introduction")
                key = step_key(inp.handover_id, "introduce", partner_id)
                await self._step(
                    SEND_NOTIFICATIONS, SendInput(idempotency_key=key), SendResult, "send the introduction"
                )
            self._done += 1
        ref = HandoverRef(handover_id=inp.handover_id)
        workflow.set_current_details(f"{total} partner(s) handed over: sending the handover pack")
        await self._step(HandoverActivity.PACK, ref, NotifyResult, "queue the receiving CAM's handover pack")
        key = step_key(inp.handover_id, "pack")
        await self._step(SEND_NOTIFICATIONS, SendInput(idempotency_key=key), SendResult, "send the handover pack")
        await self._step(HandoverActivity.COMPLETE, ref, StepResult, "complete the handover")
        workflow.set_current_details(f"completed: {total} partner(s)")
