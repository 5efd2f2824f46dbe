"""The worker: every journey's workflow and activities (from the registry) on one task queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import (
    Interceptor,
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)

from core import registry
from core.hooks import follow_policy
from core.memory import freeze_startup_objects
from core.observability import configure_logging, configure_tracing
from core.settings import Settings
from core.temporal import connect
from store.db import make_engine, make_sessionmaker
from worker.integrations import integration_activities, integration_workflows
from worker.interceptors import DatabaseErrorInterceptor, RetryingStepsInterceptor
from worker.observe import ObserveInterceptor, runtime, serve_health
from worker.runner import SandboxedRunner


def build_worker(
    client: Client,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str | None = None,
    workflow_runner: WorkflowRunner | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker of every journey; `workflow_runner` replaces the default sandboxed runner
    (worker/runner.py; the simulator runs the same workflows unsandboxed), as does
    `WORKER_WORKFLOW_SANDBOX=false`; `interceptors` go first (the simulator orders routings)."""
    if workflow_runner is None:
        workflow_runner = SandboxedRunner() if settings.worker_workflow_sandbox else UnsandboxedWorkflowRunner()
    freeze_startup_objects()  # every module a workflow or an activity runs is imported by now
    resources = registry.Resources(
        sessionmaker=sessionmaker, mailer=registry.make_mailer(settings, pooled=True), settings=settings
    )
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=registry.workflows() + integration_workflows(),
        activities=registry.activities(resources) + integration_activities(resources),
        interceptors=[
            *interceptors,
            RetryingStepsInterceptor(sessionmaker),
            DatabaseErrorInterceptor(),
            ObserveInterceptor(),
        ],
        max_cached_workflows=settings.worker_max_cached_workflows,
        **concurrency(settings),
        workflow_runner=workflow_runner,
    )


def concurrency(settings: Settings) -> dict[str, Any]:
    """The worker's concurrency settings that are set (the SDK's defaults for the others)."""
    out: dict[str, Any] = {
        name: value
        for name, value in (
            ("max_concurrent_workflow_tasks", settings.worker_max_concurrent_workflow_tasks),
            ("max_concurrent_activities", settings.worker_max_concurrent_activities),
            ("max_concurrent_local_activities", settings.worker_max_concurrent_local_activities),
        )
        if value is not None
    }
    if settings.worker_workflow_task_pollers is not None:
        out["workflow_task_poller_behavior"] = PollerBehaviorSimpleMaximum(settings.worker_workflow_task_pollers)
    if settings.worker_activity_task_pollers is not None:
        out["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(settings.worker_activity_task_pollers)
    if settings.worker_graceful_shutdown_seconds:
        out["graceful_shutdown_timeout"] = timedelta(seconds=settings.worker_graceful_shutdown_seconds)
    return out


async def run_worker(settings: Settings) -> None:
    configure_logging(settings, "worker")
    configure_tracing(settings, "camlights-worker")
    engine = make_engine(settings.database_url)
    client = await connect(settings, runtime=runtime(settings))
    sessionmaker = make_sessionmaker(engine)
    worker = build_worker(client, settings, sessionmaker)
    # The journeys' policy hooks (e.g. the QBR cycle's Temporal Schedule) follow the current policy,
    # and each new version without a restart; a failure is logged and retried, it never stops the worker.
    following = asyncio.create_task(follow_policy(client, sessionmaker, settings.task_queue))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info(
        "worker polling task queue %r on %s (journeys: %s)",
        settings.task_queue,
        settings.temporal_address,
        ", ".join(s.name for s in registry.JOURNEYS),
    )
    async with worker:
        server = None
        if settings.worker_health_port:
            address = (settings.worker_observe_host, settings.worker_health_port)
            try:
                server = await serve_health(worker, client, sessionmaker, *address)
            except OSError as err:  # e.g. the port is taken: no probe endpoint rather than no worker
                logging.warning("worker health endpoint not served on %s:%s: %s", *address, err)
        await stop.wait()
        if server is not None:
            server.close()
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await engine.dispose()
