"""Bounds on request bodies, enforced before a handler runs (pure ASGI):

* Size: nothing a caller sends makes the API keep more than `MAX_BODY_BYTES` (uploads, the routes
  marked `route_meta(upload=True)` (api/routemeta.py): `MAX_UPLOAD_BYTES`, spooled to a temporary
  file past 1 MiB, never joined in memory). A declared `Content-Length` over the limit is refused
  before anything is read; a chunked body is counted as it arrives and refused as soon as it
  passes the limit (413).
* Authentication first: a body sent to a route that needs an API key is not read until the key is
  there (401 without reading otherwise); an upload's key is checked against the database before
  its first byte is read, so an unauthenticated caller cannot make the API spool anything.
* Time: the whole body must arrive within `body_seconds` (uploads: `upload_seconds`), else 408 and
  the connection is closed: a slow client cannot hold a request open.
* Concurrency: at most `uploads_per_key` uploads at once per API key (429 with `Retry-After`).
* An upload route without an API key is a partner portal form (`portal_action(upload=True)`): its
  portal session is checked before the first byte is read (401 without one), and its user counts
  as the key does for the concurrency bound.

The body is read up front (bounded), then handed to the app: the limits hold whatever the app does
with the stream, and a refusal never reaches a handler that half-read it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from tempfile import SpooledTemporaryFile
from typing import IO

from fastapi import HTTPException
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.routemeta import routes_of

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: the largest body (a whole program policy) is a few KiB
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # file uploads (MDF proof of performance); the policy's limits apply within
SPOOL_IN_MEMORY = 1024 * 1024  # an upload past this goes to a temporary file
REPLAY_CHUNK = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes"


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        upload_bytes: int = MAX_UPLOAD_BYTES,
        *,
        body_seconds: float = 30.0,
        upload_seconds: float = 300.0,
        uploads_per_key: int = 2,
        signed_in_user: Callable[[Request], Awaitable[uuid.UUID | None]] | None = None,
    ) -> None:
        self.app = app
        self.signed_in_user = signed_in_user  # the portal's (api/portal/security.py: `uploader`)
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.body_seconds = body_seconds
        self.upload_seconds = upload_seconds
        self.uploads_per_key = uploads_per_key
        self.uploading: Counter[uuid.UUID] = Counter()  # API key id -> its uploads in progress
        self._keyed: list[tuple[str, re.Pattern[str]]] | None = None  # (method, path) of the keyed operations
        self._uploads: list[tuple[str, re.Pattern[str]]] | None = None  # (method, path) of the upload routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = self._route_is_upload(scope)
        limit = self.upload_bytes if upload else self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(413, too_large(limit))(scope, receive, send)
            return
        if not _has_body(scope, declared):
            await self.app(scope, receive, send)
            return
        key_id: uuid.UUID | None = None
        if self._route_needs_key(scope):
            try:
                key_id = await self._authenticate(scope, full=upload)
            except HTTPException as err:  # 401 (or 429 from the failure limiter): nothing was read
                await _refuse(err.status_code, str(err.detail), err.headers)(scope, receive, send)
                return
        elif upload:
            key_id = await self._portal_user(scope)
            if key_id is None:  # no signed-in partner user: nothing is read
                await _refuse(401, "sign in to the partner portal to upload files")(scope, receive, send)
                return
        if upload and key_id is not None:
            if self.uploading[key_id] >= self.uploads_per_key:
                detail = f"at most {self.uploads_per_key} uploads at once per API key; retry when one has finished"
                await _refuse(429, detail, {"Retry-After": "5"})(scope, receive, send)
                return
            self.uploading[key_id] += 1
        try:
            await self._read_then_run(scope, receive, send, limit, self.upload_seconds if upload else self.body_seconds)
        finally:
            if upload and key_id is not None:
                self.uploading[key_id] -= 1
                if self.uploading[key_id] <= 0:
                    del self.uploading[key_id]

    async def _read_then_run(self, scope: Scope, receive: Receive, send: Send, limit: int, seconds: float) -> None:
        spool: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (closed below)
        try:
            try:
                async with asyncio.timeout(seconds):
                    size = 0
                    while True:
                        message = await receive()
                        if message["type"] != "http.request":  # http.disconnect: the caller is gone
                            return
                        chunk = message.get("body", b"")
                        size += len(chunk)
                        if size > limit:
                            await _refuse(413, too_large(limit))(scope, receive, send)
                            return
                        spool.write(chunk)
                        if not message.get("more_body", False):
                            break
            except TimeoutError:
                detail = f"request body not received within {seconds:g} seconds"
                await _refuse(408, detail)(scope, receive, send)
                return
            spool.seek(0)
            await self.app(scope, _replay(spool, size, receive), send)
        finally:
            spool.close()

    def _route_is_upload(self, scope: Scope) -> bool:
        """Whether the request goes to a route marked as an upload (`route_meta(upload=True)`)."""
        if self._uploads is None:
            self._uploads = [
                (method, compile_path(path)[0]) for method, path, meta in routes_of(scope["app"]) if meta.upload
            ]
        return any(m == scope["method"] and rx.match(scope["path"]) for m, rx in self._uploads)

    def _route_needs_key(self, scope: Scope) -> bool:
        """Whether the operation authenticates with an API key: what the OpenAPI schema says (its
        `security`, from the bearer dependency); links, the workspace and the codec do not."""
        if self._keyed is None:
            self._keyed = [
                (method.upper(), re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"))
                for path, item in scope["app"].openapi().get("paths", {}).items()
                for method, operation in item.items()
                if isinstance(operation, dict) and operation.get("security")
            ]
        return any(m == scope["method"] and rx.match(scope["path"]) for m, rx in self._keyed)

    async def _authenticate(self, scope: Scope, *, full: bool) -> uuid.UUID | None:
        """The caller's key id (`full`: checked against the database), or HTTPException 401."""
        from api.auth import principal_from_request, require_bearer_header

        request = Request(scope)
        if not full:
            require_bearer_header(request)  # the handler's dependency checks the key itself
            return None
        async with request.app.state.sessionmaker() as session:
            return (await principal_from_request(request, session)).key_id

    async def _portal_user(self, scope: Scope) -> uuid.UUID | None:
        """The signed-in partner user of a portal upload form (None: no live session, or no portal)."""
        return None if self.signed_in_user is None else await self.signed_in_user(Request(scope))


def _has_body(scope: Scope, declared: int | None) -> bool:
    if declared is not None:
        return declared > 0
    chunked = any(n == b"transfer-encoding" and b"chunked" in v.lower() for n, v in scope.get("headers", ()))
    return chunked or scope["method"] in BODY_METHODS


def _refuse(status: int, detail: str, headers: Mapping[str, str] | None = None):
    """An error answered before (all of) the body was read: the connection is closed after it."""
    return error_response(status, detail, headers={**(headers or {}), "Connection": "close"})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(spool: IO[bytes], size: int, receive: Receive) -> Receive:
    """A `receive` that gives the spooled body in chunks, then what the client sends next."""
    left = size

    async def replay() -> Message:
        nonlocal left
        if left < 0:
            return await receive()
        chunk = spool.read(REPLAY_CHUNK)
        left -= len(chunk)
        more = left > 0
        if not more:
            left = -1
        return {"type": "http.request", "body": chunk, "more_body": more}

    return replay
