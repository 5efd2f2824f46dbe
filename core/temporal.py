"""The one way every process connects to Temporal (pydantic payloads encrypted with the key ring,
TLS / API key)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from core.codec import data_converter
from core.observability import tracing_interceptor
from core.settings import Settings


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """`runtime`: the worker's (with its Prometheus metrics); None: the SDK's default."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.key_ring(), accept_plain=settings.environment == "development"),
        tls=settings.temporal_tls or settings.temporal_api_key is not None,
        api_key=settings.temporal_api_key,
        interceptors=[tracing_interceptor()],
        runtime=runtime,
    )
