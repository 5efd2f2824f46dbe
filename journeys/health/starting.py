"""Starting the health sweep (journeys/health/sweep.py): the policy hook (manifest
`on_policy_saved`), run by `PUT /policy` and by every worker at start and on a newer policy."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain.policy import ProgramPolicy
from journeys.health.domain import SWEEP, SweepInput
from journeys.health.policy import HealthPolicy
from journeys.health.sweep import HealthSweepWorkflow


def sweeping(policy: ProgramPolicy) -> bool:
    """The sweep runs while health is on and its cadence is not 0."""
    h = policy.section(HealthPolicy)
    return h.watch and h.sweep_seconds > 0


async def ensure_health_sweep(client: Client, policy: ProgramPolicy, task_queue: str, version: int) -> None:
    """Start `health-sweep` if the policy has it on and it is not running (idempotent). A run
    that ended (the policy had it off) starts again from the newest event."""
    if not sweeping(policy):
        return
    await client.start_workflow(
        HealthSweepWorkflow.run,
        SweepInput(),
        id=SWEEP,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Health sweep: scores the partners of the events that move health",
    )
