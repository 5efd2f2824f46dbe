"""Recorded QBR histories (a partner's QBR and a cycle) must replay on the current workflow code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import histories, replay

HISTORIES = histories("qbr")


def test_histories_are_recorded():
    names = {p.stem for p in HISTORIES}
    assert {
        "qbr-gold-quarter",
        "qbr-registered-scorecard",
        "qbr-demotion-recovered",
        "qbr-cycle-pages",
        "qbr-cycle-pages-before-independent",  # the cycle's children, before CYCLE_STARTS_WORKFLOWS_PATCH
    } <= names, names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_qbr_history_replays(path: Path):
    await replay(path)
