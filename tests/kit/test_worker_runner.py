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
from temporalio.worker.workflow_sandbox._restrictions import RestrictedModule
from temporalio.workflow import _Definition

from bench import baseline
from core import registry
from journeys.deal.workflow import DealWorkflow
from worker.integrations import integration_workflows
from worker.main import build_worker
from worker.runner import SandboxedRunner


def _details(workflow: type = DealWorkflow) -> WorkflowInstanceDetails:
    """What the SDK gives a runner for a run (as its own validation does, with its stand-in info)."""
    return WorkflowInstanceDetails(
        payload_converter_factory=DataConverter.default._new_payload_converter,
        failure_converter_class=DataConverter.default.failure_converter_class,
        interceptor_classes=[],
        defn=_Definition.must_from_class(workflow),
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


def _executed_anew(workflow: type) -> set[str]:
    """The modules the sandbox executed for a new run of `workflow`: not passed through from the
    worker's own, and not the sandbox's restricting proxies of passed-through ones."""
    import sys

    modules = SandboxedRunner().create_instance(_details(workflow)).importer.new_modules
    return {
        name
        for name, module in modules.items()
        if name != "__main__" and module is not sys.modules.get(name) and not isinstance(module, RestrictedModule)
    }


def _module_and_packages(workflow: type) -> set[str]:
    parts = workflow.__module__.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


EVERY_WORKFLOW = [
    *registry.workflows(),
    *integration_workflows(),
    baseline.BaselineWorkflow,
    baseline.QbrFanoutWorkflow,
    baseline.QbrChildWorkflow,
]


@pytest.mark.parametrize("workflow", EVERY_WORKFLOW, ids=lambda w: w.__name__)
async def test_a_new_run_executes_only_its_workflow_module_again(workflow):
    """The sandbox imports a workflow's module again for every run; everything it imports must be
    passed through (models, the kit, pydantic), or each run rebuilds it. The bench's bare
    baselines are held to the same as the journeys (bench/baseline.py)."""
    assert _executed_anew(workflow) == _module_and_packages(workflow)


@pytest.mark.parametrize("workflow", EVERY_WORKFLOW, ids=lambda w: w.__name__)
def test_a_workflow_module_defines_only_workflows(workflow):
    """What a workflow's module defines is built again for every run: a pydantic model about a
    millisecond of CPU, a dataclass a third of one. Messages live in a passed-through module (a
    journey's `domain.py`); a baseline that defined its own would be charged for them and no
    longer be the bare process the journeys are measured against."""
    import importlib
    import inspect

    module = importlib.import_module(workflow.__module__)
    defined = {name for name, obj in vars(module).items() if inspect.isclass(obj) and obj.__module__ == module.__name__}
    workflows = {w.__name__ for w in EVERY_WORKFLOW if w.__module__ == module.__name__}
    assert defined == workflows, f"{module.__name__} defines {sorted(defined - workflows)} besides its workflows"
