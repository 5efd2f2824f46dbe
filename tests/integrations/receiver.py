"""A webhook receiver on loopback, as a subscriber would write one: it verifies each request's
Standard Webhooks signature with the `standardwebhooks` library (not our code), deduplicates by
`webhook-id`, and can be told to fail requests (the first N, or all until told otherwise)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.services import free_port


@dataclass
class Received:
    path: str
    msg_id: str
    body: bytes
    headers: dict[str, str]
    event: dict


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)  # path -> the subscription's secret
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> requests still to fail
    down: set[str] = field(default_factory=set)  # paths answering 503 until removed
    requests: list[Received] = field(default_factory=list)  # every request, verified or not
    accepted: dict[str, list[Received]] = field(default_factory=dict)  # path -> first of each id, in order
    refused: list[str] = field(default_factory=list)  # why a request was refused
    replies: dict[str, bytes] = field(default_factory=dict)  # path -> the body of its 200 (default: JSON ok)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.app = Starlette(routes=[Route("/{path}", self._hook, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task

    async def _hook(self, request: Request) -> Response:
        path = request.path_params["path"]
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        got = Received(path, headers.get("webhook-id", ""), body, headers, json.loads(body))
        self.requests.append(got)
        try:
            Webhook(self.secrets[path]).verify(body, headers)
        except Exception as err:
            self.refused.append(f"{path}: {type(err).__name__}: {err}")
            return JSONResponse({"error": "bad signature"}, status_code=400)
        if path in self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        if self.fail_first.get(path, 0) > 0:
            self.fail_first[path] -= 1
            return JSONResponse({"error": "try later"}, status_code=500)
        seen = self.accepted.setdefault(path, [])
        if all(r.msg_id != got.msg_id for r in seen):  # exactly once in effect
            seen.append(got)
        if path in self.replies:
            return Response(self.replies[path], media_type="text/plain; charset=utf-8")
        return JSONResponse({"ok": True})

    def types(self, path: str, partner_id: str | None = None) -> list[str]:
        return [
            r.event["type"]
            for r in self.accepted.get(path, [])
            if partner_id is None or r.event["data"]["partner_id"] == partner_id
        ]
