"""Metrics and traces after a real journey: the worker's Prometheus endpoint (the Temporal SDK's
runtime metrics and ours), the API's `/metrics`, and one trace from the API request to the
activities it caused (an in-memory span exporter); JSON log lines carry the workflow, run and
partner ids."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.observability import PARTNER_ID, JsonFormatter, tracer_provider
from core.temporal import connect
from domain.enums import Role
from tests.helpers.api import deal_body, enrol, new_key
from tests.helpers.processes import process_env
from tests.helpers.waiting import eventually
from tests.integrations.test_webhooks import fast_webhooks
from worker.main import build_worker
from worker.observe import runtime, serve_health
from worker.services import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider (set once per process), exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def series(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? ([0-9.eE+-]+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_metrics_and_a_trace_from_the_api_request_to_the_activities(
    api, ops, settings, sessionmaker, mailbox, spans
):
    port = free_port()
    rt = runtime(settings.model_copy(update={"worker_metrics_port": port}))
    assert rt is not None
    client = await connect(settings, runtime=rt)  # as `camlights worker` does: tracing and metrics on
    health_port = free_port()
    async with build_worker(client, settings, sessionmaker, settings.task_queue) as worker:
        server = await serve_health(worker, client, sessionmaker, "127.0.0.1", health_port)
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{health_port}/health")
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"worker": "ok", "temporal": "ok", "database": "ok"}
        await fast_webhooks(api, ops)
        partner = await enrol(api, ops, tier="registered", domain="observed.test")
        partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
        spans.clear()
        before = (await api.get("/metrics")).text  # the API's counters are process-wide: measure the difference
        r = await api.post("/deals", json=deal_body(amount="2500.00"), headers=partner_h)
        assert r.status_code == 201, r.text
        deal = r.json()
        r = await eventually(lambda: _approved(api, ops, deal["id"]), what="auto approval", timeout=30)
        r = await api.post(f"/deals/{deal['id']}/stage", json={"stage": "closed_won"}, headers=partner_h)
        assert r.status_code == 202, r.text
        handle = client.get_workflow_handle(f"deal-{deal['id']}")
        assert (await handle.result())["state"] == "won"

        # The worker: the SDK's own series and ours, on one Prometheus endpoint.
        async with httpx.AsyncClient() as http:
            worker_text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert series(worker_text, "temporal_workflow_completed", workflow_type="DealWorkflow") >= 1
        # Every step of the deal and of the enrolment's onboarding is a local activity (kit generation 6).
        assert series(worker_text, "temporal_local_activity_execution_latency_count") >= 1
        assert series(worker_text, "camlights_journeys_started", journey="deal") >= 1
        assert series(worker_text, "camlights_journeys_ended", journey="deal", state="won") >= 1
        assert series(worker_text, "camlights_decisions", journey="deal", outcome="approved", by="system") >= 1
        assert series(worker_text, "camlights_decision_latency_count", journey="deal") >= 1
        assert series(worker_text, "camlights_emails", journey="deal", template="approved", outcome="sent") >= 1

    async with httpx.AsyncClient() as http:  # the worker has stopped polling: the probe says so
        r = await http.get(f"http://127.0.0.1:{health_port}/health")
    server.close()
    assert r.status_code == 503 and r.json()["checks"]["worker"] == "not running", r.text

    # The API: latency by route template (never by id).
    text = (await api.get("/metrics")).text

    def grew(**labels: str) -> float:
        name = "camlights_api_request_duration_seconds_count"
        return series(text, name, **labels) - series(before, name, **labels)

    assert grew(method="POST", route="/deals", status="201") == 1
    assert grew(method="GET", route="/deals/{deal_id}", status="200") >= 1  # the test's polls for the approval
    assert deal["id"] not in text

    # One trace: the API request is the ancestor of the workflow and of the activities it caused.
    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name == "POST /deals")
    by_id = {s.context.span_id: s for s in finished}

    def ancestors(span):
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span

    caused = [s for s in finished if s.context.trace_id == request.context.trace_id]
    names = {s.name for s in caused}
    assert {
        "StartWorkflow:DealWorkflow",
        "RunWorkflow:DealWorkflow",
        # The approval, its email and the deal's events: one step (kit generation 12).
        "RunActivity:deal.record_state_and_notify",
    } <= names, sorted(names)
    record = next(s for s in caused if s.name == "RunActivity:deal.record_state_and_notify")
    assert request in list(ancestors(record))


async def _approved(api, ops, deal_id):
    return (await api.get(f"/deals/{deal_id}", headers=ops)).json()["state"] == "approved"


@pytest.mark.unit
def test_json_log_lines_carry_workflow_run_and_partner_ids():
    record = logging.LogRecord("temporalio.workflow", logging.WARNING, __file__, 1, "deal %s stalled", ("x",), None)
    record.temporal_workflow = {"workflow_id": "deal-1", "run_id": "r-1", "workflow_type": "DealWorkflow"}
    record.partner_id = "p-1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "deal x stalled" and line["level"] == "warning"
    assert (line["workflow_id"], line["run_id"], line["partner_id"]) == ("deal-1", "r-1", "p-1")
    activity = logging.LogRecord("temporalio.activity", logging.INFO, __file__, 1, "sent", (), None)
    activity.temporal_activity = {"workflow_id": "deal-2", "workflow_run_id": "r-2", "activity_type": "outbox.send"}
    token = PARTNER_ID.set("p-2")
    try:
        line = json.loads(JsonFormatter().format(activity))
    finally:
        PARTNER_ID.reset(token)
    assert (line["workflow_id"], line["run_id"], line["partner_id"], line["activity_type"]) == (
        "deal-2",
        "r-2",
        "p-2",
        "outbox.send",
    )


async def test_spans_are_exported_to_the_configured_otlp_endpoint(settings):
    """With OTLP_ENDPOINT set, spans leave the process over OTLP/HTTP (a collector on loopback)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    received: list[bytes] = []

    async def collect(request: Request) -> Response:
        received.append(await request.body())
        return Response(status_code=200, media_type="application/x-protobuf")

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/v1/traces", collect, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        endpoint = f"http://127.0.0.1:{port}/v1/traces"
        provider = tracer_provider(settings.model_copy(update={"otlp_endpoint": endpoint}), "camlights-test")
        assert provider is not None
        with provider.get_tracer("test").start_as_current_span("POST /deals"):
            pass
        assert await asyncio.to_thread(provider.force_flush, 10_000)
        await eventually(lambda: received, what="an OTLP export", timeout=10)
        assert b"POST /deals" in received[0] and b"camlights-test" in received[0]
        provider.shutdown()
    finally:
        server.should_exit = True
        await serving
    assert tracer_provider(settings, "camlights-test") is None  # no endpoint: nothing exported


async def test_the_access_log_never_holds_a_link_or_sign_in_token(settings, tmp_path):
    """A real `camlights api` process: mail scanners open every link, so a token in the access log
    would be an unused, valid credential; the log shows the request with the token redacted."""
    port, log = free_port(), tmp_path / "api.log"
    env = process_env(settings, API_HOST="127.0.0.1", API_PORT=str(port), LINK_SECRET=settings.link_secret)
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "api"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tokens = {name: f"{name}.{secrets.token_urlsafe(24)}" for name in ("deal", "mdf", "signin", "query")}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def up() -> bool:
                assert proc.poll() is None, log.read_text()[-2000:]
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=60, interval=0.2, what="the API process")
            await http.get(f"/deals/links/{tokens['deal']}")
            await http.post(f"/mdf/links/{tokens['mdf']}", data={"reason": ""})
            await http.get(f"/web/sign-in/{tokens['signin']}", params={"next": "/web/portfolio"})
            await http.get("/health", params={"token": tokens["query"]})
            await eventually(lambda: log.read_text().count("/health?token=") == 1, what="the access log lines")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    text = log.read_text()
    for token in tokens.values():
        assert token.split(".", 1)[1] not in text, f"token {token} in the access log"
    for line in (
        "/deals/links/<redacted>",
        "/mdf/links/<redacted>",
        "/web/sign-in/<redacted>?next=%2Fweb%2Fportfolio",
        "/health?token=<redacted>",
    ):
        assert line in text, text[-2000:]
