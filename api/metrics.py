"""The API's metrics and request spans.

`GET /metrics`: Prometheus text (prometheus_client), not in the OpenAPI schema and, like
`/health`, without a key (series names and labels only: routes, statuses, event types; no
partner data). The worker serves its own, with the Temporal SDK's (`WORKER_METRICS_PORT`).

`Observe` is a pure ASGI middleware: every request is a server span (the parent of whatever the
request starts or signals in Temporal, through the client's tracing interceptor) and a sample
of `camlights_api_request_duration_seconds{method, route, status}`, `route` being the route's
template (`/deals/{deal_id}`), so that ids never become labels."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability import tracer

REQUESTS = Histogram(
    "camlights_api_request_duration_seconds",
    "API requests by method, route template and status",
    ["method", "route", "status"],
)
CRM_EVENTS = Counter("camlights_crm_events", "CRM events received, by type and outcome", ["type", "outcome"])
WEBHOOK_REPLAYS = Counter("camlights_webhook_replays", "webhook deliveries replayed by ops")

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        status = 500
        started = time.perf_counter()

        async def send_watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer().start_as_current_span(f"{method}", kind=trace.SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, send_watched)
            finally:
                route = _route(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if route != "/metrics":
                    REQUESTS.labels(method, route, str(status)).observe(time.perf_counter() - started)
