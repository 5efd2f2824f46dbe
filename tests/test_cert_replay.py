"""Recorded certification histories must replay on the current workflow code (see test_onboarding_replay)."""
from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.cert import CertWorkflow
from workflows.onboarding import OnboardingWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("cert-*.json"))


def test_histories_are_recorded():
    assert len(HISTORIES) >= 2, "recorded certification histories are missing from tests/histories/"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_cert_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[CertWorkflow, OnboardingWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
