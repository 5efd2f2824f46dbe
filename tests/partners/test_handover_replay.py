"""Recorded CAM handovers replay on the current code (record them with
`CAMLIGHTS_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/partners/test_handover.py
tests/faults/test_handover_crash.py`): one through the API, one whose worker was killed mid-move."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import record_platform, replay
from workflows.handover import HandoverWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
RECORDED = sorted(HISTORIES.glob("handover-*.json"))


async def record_handover(handle, name: str) -> None:
    await record_platform(HISTORIES, handle, f"handover-{name}")


def test_histories_are_recorded():
    assert len(RECORDED) >= 2, "recorded CAM handovers are missing from tests/partners/histories/"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_a_recorded_handover_replays(path: Path):
    await replay(path, [HandoverWorkflow])
