"""Recorded onboarding histories must replay on the current workflow code: a change that would
break running journeys (non-determinism) fails here. Re-record with
`CAMLIGHTS_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/onboarding/test_workflow.py`
only when the change is guarded by `workflow.patched`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from journeys.onboarding.domain import OnboardingInput, OnboardingResult
from journeys.onboarding.workflow import OnboardingWorkflow
from tests.helpers.histories import histories, replay
from tests.helpers.keys import CONVERTER

HISTORIES = histories("onboarding")


def test_histories_are_recorded():
    assert len(HISTORIES) >= 3, "recorded onboarding histories are missing from tests/onboarding/histories/"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_onboarding_history_replays(path: Path):
    await replay(path)


@workflow.defn(name="OnboardingWorkflow", sandboxed=False)
class ReorderedOnboarding(OnboardingWorkflow):
    """The journey with one extra step at the start: not what the recorded histories did."""

    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        await workflow.sleep(1)  # a timer where the history has an activity
        return await super().run(inp)


async def test_a_changed_workflow_fails_replay():
    """The replay test can fail: a workflow that schedules its steps differently is refused."""
    history = WorkflowHistory.from_json("x", HISTORIES[0].read_text())
    replayer = Replayer(workflows=[ReorderedOnboarding], data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
