"""Helpers the journeys' tests share: API calls every journey needs, mail reading, and the
recorded histories (written with CAMLIGHTS_RECORD_HISTORIES=1, replayed by test_<journey>_replay)."""
from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

HISTORIES = Path(__file__).parent / "histories"


async def record_history(handle, name: str) -> None:
    """With CAMLIGHTS_RECORD_HISTORIES=1, keep the history for the replay tests
    (`tests/histories/<journey>-<name>.json`, the journey being the workflow id's prefix)."""
    if os.environ.get("CAMLIGHTS_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        journey = handle.id.split("-", 1)[0]
        (HISTORIES / f"{journey}-{name.removeprefix(journey + '-')}.json").write_text(history.to_json())


def histories(journey: str) -> list[Path]:
    return sorted(HISTORIES.glob(f"{journey}-*.json"))


async def replay(path: Path, *workflows) -> None:
    """Replay one recorded history on the current workflow code; non-determinism fails."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=list(workflows), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def enrol(api, ops, *, tier: str, cam_id=None, domain: str, name="Acme Networks", **extra):
    body = {"name": name, "domain": domain, "country": "de", "type": "reseller", "tier": tier,
            "cam_id": str(cam_id) if cam_id else None, "contact_email": f"owner@{domain}", **extra}
    r = await api.post("/partners", json=body, headers=ops)
    assert r.status_code == 201, r.text
    return r.json()


async def create_cam(api, ops, email="casey@vendor.test", name="Casey"):
    r = await api.post("/cams", json={"name": name, "email": email}, headers=ops)
    assert r.status_code == 201, r.text
    return r.json()


def templates(mailbox, to: str | None = None) -> list[str]:
    return [m["X-CAMLights-Template"] for m in mailbox.messages if to is None or m["To"] == to]


def deal_body(**over):
    return {"customer_name": "Globex Corporation", "customer_domain": "globex.com", "product_category": "network",
            "amount": "25000.00", "currency": "USD", "expected_close_date": "2027-03-31", **over}
