"""Recorded deal histories must replay on the current workflow code (see test_onboarding_replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import histories, replay

HISTORIES = histories("deal")


def test_histories_are_recorded():
    assert len(HISTORIES) >= 2, "recorded deal histories are missing from tests/deal/histories/"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_deal_history_replays(path: Path):
    await replay(path)
