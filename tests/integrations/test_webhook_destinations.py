"""The SSRF guard's connection rules against a real receiver on loopback: the request goes to the
address that was checked (the name is not resolved again: a DNS rebinding has no second answer to
give), at most MAX_RESPONSE_BYTES of an answer are kept and the whole attempt has one deadline,
however slowly the destination drips its answer; an integration's key may not allow private
destinations."""

from __future__ import annotations

import asyncio
import time

import pytest_asyncio
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from activities.webhooks import MAX_RESPONSE_BYTES, post_pinned
from store.models.integrations import WebhookSubscription
from tests.helpers.waiting import eventually
from worker.services import free_port

NAME = "hooks.camlights.invalid"  # `.invalid` never resolves: only the pinned address can be reached


@pytest_asyncio.fixture
async def destination():
    """A destination that echoes the Host header, answers 8 MiB, or drips a byte every 0.1 s."""
    sent = {"big": 0}

    async def host(request: Request) -> JSONResponse:
        return JSONResponse({"host": request.headers["host"], "body": (await request.body()).decode()})

    async def big(request: Request) -> StreamingResponse:
        async def chunks():
            for _ in range(128):
                sent["big"] += 65536
                yield b"x" * 65536

        return StreamingResponse(chunks(), status_code=500)

    async def drip(request: Request) -> StreamingResponse:
        async def bytes_():
            for _ in range(600):
                yield b"."
                await asyncio.sleep(0.1)  # the destination's pace, not the test's: the test waits on the client

        return StreamingResponse(bytes_())

    port = free_port()
    app = Starlette(
        routes=[
            Route("/host", host, methods=["POST"]),
            Route("/big", big, methods=["POST"]),
            Route("/drip", drip, methods=["POST"]),
        ]
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, what="the destination to listen")
    yield port, sent
    server.should_exit = True
    server.force_exit = True
    await asyncio.wait_for(task, 15)


async def test_the_request_goes_to_the_checked_address_under_the_urls_name(destination):
    port, _ = destination
    answer = await post_pinned(
        f"http://{NAME}:{port}/host", "127.0.0.1", b"{}", {"content-type": "application/json"}, 5
    )
    assert answer.status_code == 200 and answer.json() == {"host": f"{NAME}:{port}", "body": "{}"}


async def test_an_answer_is_read_up_to_the_cap(destination):
    port, sent = destination
    answer = await post_pinned(f"http://{NAME}:{port}/big", "127.0.0.1", b"{}", {}, 10)
    assert answer.status_code == 500 and len(answer.content) == MAX_RESPONSE_BYTES
    assert sent["big"] < 128 * 65536  # the client hung up: the 8 MiB were never all sent


async def test_a_dripping_answer_ends_at_the_attempts_deadline(destination):
    """A byte every 0.1 s keeps every read timeout happy; the attempt's total deadline still holds."""
    port, _ = destination
    started = time.monotonic()
    try:
        await post_pinned(f"http://{NAME}:{port}/drip", "127.0.0.1", b"{}", {}, 1.0)
        raise AssertionError("the dripping answer was read to its end")
    except TimeoutError:
        pass
    assert 1.0 <= time.monotonic() - started < 5.0


async def test_an_integration_key_may_not_allow_private_destinations(api, ops, sessionmaker):
    r = await api.post("/api-keys", json={"role": "ops", "label": "CRM (Salesforce)", "integration": True}, headers=ops)
    assert r.status_code == 201 and r.json()["key"].startswith("cl_int_") and r.json()["integration"], r.text
    crm = {"Authorization": f"Bearer {r.json()['key']}"}
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "allow_private_network": True}
    r = await api.post("/webhooks", json=body, headers=crm)
    assert r.status_code == 403 and "integration key" in r.json()["detail"], r.text
    r = await api.post("/webhooks", json={**body, "allow_private_network": False}, headers=crm)
    assert r.status_code == 422 and "loopback" in r.json()["detail"], r.text
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0
    r = await api.post("/webhooks", json=body, headers=ops)  # a person's ops key may
    assert r.status_code == 201, r.text
    r = await api.post("/api-keys", json={"role": "partner", "integration": True}, headers=ops)
    assert r.status_code == 422, r.text
