"""Recorded partner health histories must replay on the current workflow code (see test_onboarding_replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import histories, replay

HISTORIES = histories("health")


def test_histories_are_recorded():
    assert HISTORIES, "recorded partner health histories are missing from tests/health/histories/"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_health_history_replays(path: Path):
    await replay(path)
