"""Traces and logs, the same way in the API and the worker.

* Traces: OpenTelemetry through `temporalio.contrib.opentelemetry.TracingInterceptor` on every
  Temporal client (so on the worker built from it): an API request's span is the parent of the
  workflow it starts or signals, whose spans are the parents of its activities. Exported over
  OTLP/HTTP when `OTLP_ENDPOINT` is set; otherwise the global provider stays a no-op.
* Logs: JSON lines (`LOG_FORMAT=json`, the default) with the workflow id, run id and partner id
  when the record is about a workflow or an activity (the SDK puts `temporal_workflow` /
  `temporal_activity` on its loggers' records; the worker's interceptor adds the partner id).
  Tokens that grant something (one-click decision links, workspace sign-in links, `token=` style
  query values) are replaced by `<redacted>` in every record before it is written: mail scanners
  open every link, so the access log would otherwise hold unused, valid tokens."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

# The partner an activity works for (set by the worker's interceptor from the activity's input).
PARTNER_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("camlights_partner_id", default=None)

_configured = False

REDACTED = "<redacted>"
# A path segment that is a token: /deals/links/<t>, /mdf/links/<t>, /web/sign-in/<t> (any prefix).
_TOKEN_SEGMENT = re.compile(r"(/(?:links|sign-in)/)[^/?#\s\"']+")
# A query value that is a credential: ?token=..., &key=..., &api_key=..., &signature=...
_TOKEN_QUERY = re.compile(
    r"([?&](?:token|key|api_key|apikey|secret|signature|sig|code|access_token)=)[^&#\s\"']+", re.IGNORECASE
)


def redact_tokens(text: str) -> str:
    return _TOKEN_QUERY.sub(rf"\1{REDACTED}", _TOKEN_SEGMENT.sub(rf"\1{REDACTED}", text))


class RedactTokens(logging.Filter):
    """On a handler: rewrites the message and its string arguments (uvicorn's access line passes
    the path with its query as an argument) so no token is ever written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_tokens(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A provider exporting spans over OTLP/HTTP to `OTLP_ENDPOINT` in batches (None when unset)."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider


def configure_tracing(settings: Settings, service: str) -> None:
    """Export spans over OTLP/HTTP when an endpoint is configured (once per process)."""
    global _configured
    if _configured:
        return
    provider = tracer_provider(settings, service)
    if provider is not None:
        trace.set_tracer_provider(provider)
        _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("camlights")


def tracing_interceptor() -> TracingInterceptor:
    """For every Temporal client (core/temporal.py): spans follow the call into workflows and activities."""
    return TracingInterceptor(tracer())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the workflow id, run id,
    activity and partner id when known; the traceback as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for source in ("temporal_workflow", "temporal_activity"):
            details = getattr(record, source, None)
            if isinstance(details, dict):
                for key in ("workflow_id", "run_id", "workflow_run_id", "workflow_type", "activity_type", "attempt"):
                    if key in details:
                        out["run_id" if key == "workflow_run_id" else key] = details[key]
        partner = getattr(record, "partner_id", None) or PARTNER_ID.get()
        if partner:
            out["partner_id"] = str(partner)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(settings: Settings, process: str) -> None:
    """The root logger of a process (`worker` or `api`): JSON lines or text, at INFO."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {process} %(levelname)s %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
