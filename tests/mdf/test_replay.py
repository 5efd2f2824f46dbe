"""Recorded MDF histories (requests and funds) must replay on the current workflow code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import histories, replay

HISTORIES = histories("mdf")


def test_histories_are_recorded():
    assert len(HISTORIES) >= 3, "recorded MDF histories are missing from tests/mdf/histories/"
    assert any(p.stem.startswith("mdf-fund") for p in HISTORIES), "no recorded history of the fund journey"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_mdf_history_replays(path: Path):
    await replay(path)
