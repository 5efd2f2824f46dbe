"""What the worker shows about itself: Prometheus metrics (the Temporal SDK's runtime metrics and
ours, recorded through the SDK's metric meter, on one endpoint), a health endpoint that means
something (the worker polls, Temporal and PostgreSQL answer), the partner id in activity logs,
and journeys started and ended counted by type and state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from core.observability import PARTNER_ID
from core.settings import Settings

log = logging.getLogger(__name__)


def runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting Prometheus metrics on `WORKER_METRICS_PORT` (None when 0, or
    when the port cannot be bound: the worker still runs, and says so)."""
    if not settings.worker_metrics_port:
        return None
    address = f"{settings.worker_observe_host}:{settings.worker_metrics_port}"
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except Exception as err:  # e.g. the port is taken: metrics off rather than no worker
        log.warning("worker metrics not served on %s: %s", address, err)
        return None


# --------------------------------------------------------------------------- interceptors


class _PartnerInLogs(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        arg = input.args[0] if input.args else None
        partner = getattr(arg, "partner_id", None)
        token = PARTNER_ID.set(str(partner) if partner else None)
        try:
            return await super().execute_activity(input)
        finally:
            PARTNER_ID.reset(token)


class _JourneyCounts(WorkflowInboundInterceptor):
    """`camlights_journeys_started` and `camlights_journeys_ended` by journey (and end state),
    through the workflow's metric meter: replay-safe, no command in the history."""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        journey = info.workflow_id.split("-", 1)[0]
        meter = workflow.metric_meter()
        if info.continued_run_id is None:
            meter.create_counter("camlights_journeys_started", "workflows started, by journey").add(
                1, {"journey": journey}
            )
        result = await super().execute_workflow(input)
        state = getattr(result, "state", None)
        meter.create_counter("camlights_journeys_ended", "workflows ended, by journey and end state").add(
            1, {"journey": journey, "state": str(getattr(state, "value", state) or "done")}
        )
        return result


class ObserveInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _PartnerInLogs(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _JourneyCounts


# --------------------------------------------------------------------------- health


async def health(worker: Worker, client: Client, sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """Each check's answer: `ok` or what is wrong."""
    checks = {"worker": "ok" if worker.is_running else "not running"}
    try:
        async with asyncio.timeout(3):
            await client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"{type(err).__name__}: {err}"[:200]
    try:
        async with asyncio.timeout(3), sessionmaker() as session:
            await session.execute(text("select 1"))
        checks["database"] = "ok"
    except Exception as err:
        checks["database"] = f"{type(err).__name__}: {err}"[:200]
    return checks


async def serve_health(
    worker: Worker, client: Client, sessionmaker: async_sessionmaker[AsyncSession], host: str, port: int
) -> asyncio.Server:
    """`GET /health` (readiness: the worker polls, Temporal and PostgreSQL answer) and `GET /live`
    (liveness: the worker polls) on `host:port`: 200 when every check is ok, else 503; JSON."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""
            route = path.split(b"?")[0]
            if route in (b"/health", b"/live"):
                # /live (liveness): the worker still polls; /health (readiness): and its dependencies answer.
                checks = (
                    await health(worker, client, sessionmaker)
                    if route == b"/health"
                    else {"worker": "ok" if worker.is_running else "not running"}
                )
                status = "200 OK" if all(v == "ok" for v in checks.values()) else "503 Service Unavailable"
                body = json.dumps({"status": "ok" if status.startswith("200") else "unhealthy", "checks": checks})
            else:
                status, body = "404 Not Found", json.dumps({"detail": "not found: GET /health or /live"})
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
                "connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port)
