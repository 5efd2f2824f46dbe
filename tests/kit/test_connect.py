"""Every process connects to Temporal through `core.temporal.connect`, which waits for a server
that is still starting (the dev stack starts the API right after Temporal's port opens) and gives
up with the SDK's error once its wait is over."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from core.temporal import connect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def test_a_server_that_is_not_there_is_retried_until_the_wait_is_over(settings):
    absent = settings.model_copy(update={"temporal_address": f"127.0.0.1:{_free_port()}"})
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="connect"):
        await connect(absent, wait_seconds=1.0)
    assert 0.7 <= time.monotonic() - started < 10


async def test_a_server_that_comes_up_during_the_wait_is_joined(settings):
    """The Temporal address answers only after a second (a forwarder to the real dev server that
    starts listening late): connect waits for it instead of failing at once."""
    host, port = settings.temporal_address.rsplit(":", 1)
    late_port = _free_port()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)

    async def open_late() -> asyncio.Server:
        await asyncio.sleep(1.0)
        return await asyncio.start_server(forward, "127.0.0.1", late_port)

    opening = asyncio.create_task(open_late())
    late = settings.model_copy(update={"temporal_address": f"127.0.0.1:{late_port}"})
    started = time.monotonic()
    client = await connect(late, wait_seconds=20)
    try:
        assert time.monotonic() - started >= 0.9
        assert (await client.workflow_service.get_system_info(_system_info())).server_version is not None
    finally:
        server = await opening
        server.close()


def _system_info():
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    return GetSystemInfoRequest()
