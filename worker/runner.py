"""The worker's workflow runner: Temporal's sandbox, less its cost per payload.

Before it encodes or decodes a payload of a workflow task, the SDK asks the workflow instance
which serialization context (and external-store context) the payload belongs to. In the sandbox
each such question is answered by `exec` of a code string (compiled again every time) with the
sandbox's import hooks applied around it: about 85 µs, asked ~100 times per deal journey, 15 %
of the worker's CPU (bench/README.md, "session 41"). The answer is computed from the instance's
own state (its info and pending commands): no workflow code runs and nothing is imported, so
nothing the sandbox guards is involved. `SandboxedRunner` asks the instance inside the sandbox
directly. Workflow code itself (every activation, the module's import per run) still runs in
the sandbox exactly as before; the answers are the same objects the SDK's path returns
(tests/kit/test_worker_runner.py compares them).

Built on the SDK's private `_Instance` (temporalio is pinned in pyproject.toml): an upgrade
that removes it fails at import; one that moves the instance in the sandbox falls back to the
SDK's own path and the test above fails. Either is the sign to look again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

IN_SANDBOX = "__temporal_in_sandbox"  # where `_Instance` keeps the instance it created in the sandbox


class _DirectContexts(_Instance):
    """`_Instance`, answering the two context questions without `exec` (the SDK's own path when
    the instance in the sandbox is not where this SDK version kept it)."""

    def get_serialization_context(self, command_info: Any) -> Any:
        inside = self.globals_and_locals.get(IN_SANDBOX)
        if inside is None:
            return super().get_serialization_context(command_info)
        return inside.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        inside = self.globals_and_locals.get(IN_SANDBOX)
        if inside is None:
            return super().get_external_store_context(command_info)
        return inside.get_external_store_context(command_info)


@dataclass(frozen=True)
class SandboxedRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` with the context questions answered directly (module docstring)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _DirectContexts(det, self.runner_class, self.restrictions)
