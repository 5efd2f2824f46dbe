"""Request bodies against a real uvicorn server on loopback and raw sockets (api/limits.py): a body
to a route that needs an API key is not read before the key is there (an upload's key is checked
before its first byte), a body that does not arrive in time is a 408, and one key has at most
`uploads_per_key` uploads in flight (429 with Retry-After)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
import uvicorn

from api.app import create_app
from domain.enums import Role
from tests.helpers.api import new_key
from tests.helpers.waiting import eventually
from worker.services import free_port

DECLARED = 60 * 1024 * 1024  # an upload of 60 MiB is declared; only a few bytes are ever sent
ANSWER_WITHIN = 15.0  # seconds: far above every limit configured here, far below "never"


@pytest_asyncio.fixture
async def server(settings, sessionmaker) -> AsyncIterator[int]:
    """The real app on 127.0.0.1:<port>, with short body deadlines and one upload per key."""
    port = free_port()
    app_settings = settings.model_copy(
        update={"body_read_seconds": 1.0, "upload_read_seconds": 1.5, "uploads_per_key": 1}
    )
    served = uvicorn.Server(
        uvicorn.Config(create_app(app_settings, reconcile_every=None), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(served.serve())
    await eventually(lambda: served.started or task.done(), what="uvicorn to start")
    assert not task.done(), task.result()
    yield port
    served.should_exit = True
    await asyncio.wait_for(task, 15)


class RawRequest:
    """A client that sends the head of a request, then as much of its body as the test says."""

    def __init__(self, port: int, path: str, headers: dict[str, str], length: int = DECLARED):
        self.port, self.path, self.length = port, path, length
        self.headers = {"Host": "127.0.0.1", "Content-Length": str(length), **headers}

    async def open(self, body: bytes = b"") -> RawRequest:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"POST {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        return self

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(ANSWER_WITHIN):
            status_line = await self.reader.readline()
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        self.writer.close()


def upload_path() -> str:
    return f"/mdf/requests/{uuid.uuid4()}/claim"


MULTIPART = {"Content-Type": "multipart/form-data; boundary=cut"}


async def test_an_unauthenticated_body_is_refused_without_being_read(server, sessionmaker):
    """60 MiB declared, nothing sent: the answer comes at once (it never waited for the body)."""
    for path, headers in [
        (upload_path(), MULTIPART),  # no key
        (upload_path(), {**MULTIPART, "Authorization": "Bearer cl_unknown-key"}),  # a key that does not exist
        ("/deals", {"Content-Type": "application/json"}),  # any body route that needs a key
    ]:
        length = DECLARED if "claim" in path else 1024 * 1024
        request = await RawRequest(server, path, headers, length).open()
        try:
            status, answer_headers, body = await request.answer()
        finally:
            request.close()
        assert status == 401, (path, headers, body)
        assert answer_headers["connection"] == "close" and (b"API key" in body or b"Authorization" in body)


async def test_a_portal_upload_without_a_session_is_refused_without_being_read(server, sessionmaker):
    """The partner portal's claim form takes uploads: 60 MiB declared, no portal session (or a forged
    one), nothing sent: 401 at once."""
    path = f"/portal/mdf/{uuid.uuid4()}/claim"
    for headers in (MULTIPART, {**MULTIPART, "Cookie": "camlights_portal_session=forged"}):
        request = await RawRequest(server, path, headers).open()
        try:
            status, answer_headers, body = await request.answer()
        finally:
            request.close()
        assert status == 401 and answer_headers["connection"] == "close", (headers, body)
        assert b"sign in to the partner portal" in body


async def test_a_body_that_does_not_arrive_in_time_is_408(server, sessionmaker):
    ops = await new_key(sessionmaker, Role.ops)
    for path, headers, limit in [
        (upload_path(), {**MULTIPART, **ops}, 1.5),
        ("/cams", {"Content-Type": "application/json", **ops}, 1.0),
    ]:
        started = time.monotonic()
        request = await RawRequest(server, path, headers, 4096).open(b"--cut\r\n")  # then nothing more
        try:
            status, _, body = await request.answer()
        finally:
            request.close()
        took = time.monotonic() - started
        assert status == 408 and f"within {limit:g} seconds".encode() in body, body
        assert limit <= took < ANSWER_WITHIN, took


async def test_one_key_has_at_most_its_uploads_in_flight(server, sessionmaker):
    ops = await new_key(sessionmaker, Role.ops)
    other = await new_key(sessionmaker, Role.ops)
    first = await RawRequest(server, upload_path(), {**MULTIPART, **ops}, 4096).open(b"--cut\r\n")
    second = await RawRequest(server, upload_path(), {**MULTIPART, **ops}, 4096).open(b"--cut\r\n")
    try:
        # Both are held open mid-body; one of them is refused at once, the other waits for its body.
        done, _ = await asyncio.wait(
            [asyncio.create_task(first.answer()), asyncio.create_task(second.answer())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        status, headers, body = next(iter(done)).result()
        assert status == 429 and int(headers["retry-after"]) > 0 and b"uploads at once" in body, body
        # another key is not held back by this one's uploads
        third = await RawRequest(server, upload_path(), {**MULTIPART, **other}, 8).open(b"--cut--\r")
        status, _, body = await third.answer()
        third.close()
        assert status not in (408, 429), body
    finally:
        first.close()
        second.close()

    async def free_again() -> bool:  # the held upload ended (its client went away): the key may upload again
        request = await RawRequest(server, upload_path(), {**MULTIPART, **ops}, 8).open(b"--cut--\r")
        try:
            return (await request.answer())[0] != 429
        finally:
            request.close()

    await eventually(free_again, what="the key's upload slot to be released")
