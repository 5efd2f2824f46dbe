"""The worker's sandboxed runner (worker/runner.py): the serialization and external-store
contexts the SDK asks for before each payload of a workflow task are answered by the instance in
the sandbox directly (no `exec` per payload), with the answers the SDK's own path gives; the
workflow code still runs in the sandbox. Every journey test runs on this runner (`build_worker`)
and every recorded history replays through it (tests/helpers/histories.py)."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.worker import WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import _runner as sdk_runner
from temporalio.workflow import _Definition

from journeys.deal.workflow import DealWorkflow
from worker.main import build_worker
from worker.runner import SandboxedRunner


def _details() -> WorkflowInstanceDetails:
    """What the SDK gives a runner for a run (as its own validation does, with its stand-in info)."""
    return WorkflowInstanceDetails(
        payload_converter_factory=DataConverter.default._new_payload_converter,
        failure_converter_class=DataConverter.default.failure_converter_class,
        interceptor_classes=[],
        defn=_Definition.must_from_class(DealWorkflow),
        info=sdk_runner._fake_info,
        randomness_seed=-1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )


@pytest.fixture
def execs(monkeypatch) -> list[str]:
    """The code strings the sandbox `exec`s from here on."""
    ran: list[str] = []
    run_code = sdk_runner._Instance._run_code

    def spy(self, code: str, **extra):
        ran.append(code)
        return run_code(self, code, **extra)

    monkeypatch.setattr(sdk_runner._Instance, "_run_code", spy)
    return ran


async def test_contexts_are_answered_without_exec_and_as_the_sdk_answers_them(execs):
    ours, sdk = SandboxedRunner().create_instance(_details()), SandboxedWorkflowRunner().create_instance(_details())
    assert any("DealWorkflow" in code for code in execs), "the workflow module is still imported in the sandbox"

    execs.clear()
    assert ours.get_serialization_context(None) == sdk.get_serialization_context(None) is not None
    assert ours.get_external_store_context(None) == sdk.get_external_store_context(None)
    assert len([code for code in execs if "context" in code]) == 2, "the SDK's path: one exec per question"

    execs.clear()
    for _ in range(3):
        ours.get_serialization_context(None)
        ours.get_external_store_context(None)
    assert execs == [], f"the worker's runner ran code in the sandbox to answer a context: {execs}"


async def test_the_worker_runs_workflows_on_it_unless_the_sandbox_is_off(settings, dev_env, sessionmaker):
    worker = build_worker(dev_env.client, settings, sessionmaker, "runner-check")
    assert isinstance(worker.config()["workflow_runner"], SandboxedRunner)
