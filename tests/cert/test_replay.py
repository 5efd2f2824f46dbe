"""Recorded certification histories must replay on the current workflow code (see test_onboarding_replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import histories, replay

HISTORIES = histories("cert")


def test_histories_are_recorded():
    assert len(HISTORIES) >= 2, "recorded certification histories are missing from tests/cert/histories/"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_cert_history_replays(path: Path):
    await replay(path)
