"""Recorded histories (written with CAMLIGHTS_RECORD_HISTORIES=1 by the workflow tests, kept in
tests/<journey>/histories/) and their replay on the current workflow code."""

from __future__ import annotations

import os
import re
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core import registry
from tests.helpers.keys import CONVERTER
from worker.runner import SandboxedRunner

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
_INSTALLED = re.compile(r'/[^"\s]*?/site-packages/')


def portable(history_json: str) -> str:
    """A recorded history without this machine's paths: a failure's stack trace names our files
    relative to the repository and installed ones from `site-packages/` (replay never reads them)."""
    return _INSTALLED.sub("site-packages/", history_json).replace(f"{ROOT}/", "")


def history_dir(journey: str) -> Path:
    return TESTS / journey / "histories"


async def record_history(handle, name: str) -> None:
    """With CAMLIGHTS_RECORD_HISTORIES=1, keep the history for the replay tests
    (`tests/<journey>/histories/<journey>-<name>.json`, the journey being the workflow id's prefix)."""
    if os.environ.get("CAMLIGHTS_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        journey = handle.id.split("-", 1)[0]
        path = history_dir(journey) / f"{journey}-{name.removeprefix(journey + '-')}.json"
        path.write_text(portable(history.to_json()))


def histories(journey: str) -> list[Path]:
    return sorted(history_dir(journey).glob(f"{journey}-*.json"))


async def replay(path: Path, workflows: list[type] | None = None) -> None:
    """Replay one recorded history on the current code of `workflows` (every registered journey
    workflow by default), through the test key ring (histories recorded before encryption pass
    through in clear) and the worker's runner (worker/runner.py); non-determinism fails."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=workflows or registry.workflows(), data_converter=CONVERTER, workflow_runner=SandboxedRunner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def record_platform(directory: Path, handle, name: str) -> None:
    """With CAMLIGHTS_RECORD_HISTORIES=1, keep a platform workflow's history as `<directory>/<name>.json`."""
    if os.environ.get("CAMLIGHTS_RECORD_HISTORIES") == "1":
        directory.mkdir(exist_ok=True)
        (directory / f"{name}.json").write_text(portable((await handle.fetch_history()).to_json()))


async def run_chain(client, workflow_id: str, first_run_id: str | None = None) -> list[int]:
    """Follow a continue-as-new chain from its first run: the event count of each run."""
    return [len(h.events) for h in await chain_histories(client, workflow_id, first_run_id)]


async def chain_histories(client, workflow_id: str, first_run_id: str | None = None) -> list:
    """Follow a continue-as-new chain from its first run: each run's history."""
    from temporalio.api.enums.v1 import EventType

    if first_run_id is None:
        desc = await client.get_workflow_handle(workflow_id).describe()
        first_run_id = desc.raw_description.workflow_execution_info.first_run_id
    histories, run_id = [], first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return histories


async def runs_since(client, workflow_id: str, first_run_id: str, limit: int = 20) -> int:
    """How many runs a continue-as-new chain has from `first_run_id` to its newest run, read
    backwards (each run's started event names the run it continues); 0 while the newest run does
    not lead back to it. The time-skipping server under load can show a run's continue-as-new late
    in that run's own history, after its successor already runs."""
    run_id: str | None = None
    for runs in range(1, limit + 1):
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if run_id == first_run_id:
            return runs + 1
        if not run_id:
            return 0
    return 0


async def local_steps(client, handle) -> list[str]:
    """The local activities of a workflow's history, by type, in order (their markers' data)."""
    out = []
    async for event in handle.fetch_history_events():
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                [data] = await client.data_converter.decode(marker.details["data"].payloads)
                out.append(data["activity_type"])
    return out
