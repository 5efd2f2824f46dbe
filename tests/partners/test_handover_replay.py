"""Recorded CAM handovers replay on the current code (record them with
`CAMLIGHTS_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/partners/test_handover.py
tests/faults/test_handover_crash.py`): one through the API, one whose worker was killed mid-move."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.helpers.keys import CONVERTER
from workflows.handover import HandoverWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
RECORDED = sorted(HISTORIES.glob("handover-*.json"))


async def record_handover(handle, name: str) -> None:
    if os.environ.get("CAMLIGHTS_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"handover-{name}.json").write_text((await handle.fetch_history()).to_json())


def test_histories_are_recorded():
    assert len(RECORDED) >= 2, "recorded CAM handovers are missing from tests/partners/histories/"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_a_recorded_handover_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[HandoverWorkflow], data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
