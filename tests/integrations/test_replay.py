"""Recorded webhook delivery streams replay on the current code (record them with
`CAMLIGHTS_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/integrations/test_webhooks.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.histories import record_platform, replay
from workflows.webhooks import WebhookDeliveryWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
RECORDED = sorted(HISTORIES.glob("webhooks-*.json"))


async def record_stream(handle, name: str) -> None:
    await record_platform(HISTORIES, handle, f"webhooks-{name}")


def test_histories_are_recorded():
    assert len(RECORDED) >= 2, "recorded webhook delivery streams are missing from tests/integrations/histories/"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_delivery_stream_replays(path: Path):
    await replay(path, [WebhookDeliveryWorkflow])
