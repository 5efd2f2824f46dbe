"""Recorded lead histories must replay on the current workflow code (see test_onboarding_replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import histories, replay

HISTORIES = histories("leads")


def test_histories_are_recorded():
    assert len(HISTORIES) >= 2, "recorded lead histories are missing from tests/leads/histories/"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_lead_history_replays(path: Path):
    await replay(path)
