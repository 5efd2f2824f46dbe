"""The one way every process connects to Temporal (pydantic payloads encrypted with the key ring,
TLS / API key)."""

from __future__ import annotations

import asyncio
import logging
import time

from temporalio.client import Client
from temporalio.runtime import Runtime

from core.codec import data_converter
from core.observability import tracing_interceptor
from core.settings import Settings

log = logging.getLogger(__name__)


async def connect(settings: Settings, *, runtime: Runtime | None = None, wait_seconds: float = 30) -> Client:
    """`runtime`: the worker's (with its Prometheus metrics); None: the SDK's default.

    A server that is still starting (its port open, its frontend not yet answering: the dev
    stack, a cluster rolling out) is retried for up to `wait_seconds`, then the last error is raised."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.25
    while True:
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=data_converter(settings.key_ring(), accept_plain=settings.environment == "development"),
                tls=settings.temporal_tls or settings.temporal_api_key is not None,
                api_key=settings.temporal_api_key,
                interceptors=[tracing_interceptor()],
                runtime=runtime,
            )
        except RuntimeError as exc:  # the SDK's "Failed client connect: ..."
            if time.monotonic() + pause > deadline:
                raise
            log.warning("Temporal at %s not answering yet (%s); retrying", settings.temporal_address, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
