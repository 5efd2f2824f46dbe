"""A bound on request bodies: nothing a caller sends makes the API buffer more than
`MAX_BODY_BYTES`. Pure ASGI: a declared `Content-Length` over the limit is refused before
anything is read; a body sent without one (chunked) is counted as it arrives and refused as
soon as it passes the limit. Either way the answer is 413 with the usual error body."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: the largest body (a whole program policy) is a few KiB
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # file uploads (MDF proof of performance); the policy's limits apply within
UPLOAD_PATHS = re.compile(r"^/mdf/requests/[^/]+/(claim|proofs)$")


def too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["method"] == "POST" and UPLOAD_PATHS.match(scope["path"]) else self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(413, too_large(limit), headers={"Connection": "close"})(scope, receive, send)
            return
        # Read the body up front (bounded), then hand it to the app: the limit holds whatever the
        # app does with the stream, and a refusal never reaches a handler that half-read it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: the caller is gone, nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await error_response(413, too_large(limit), headers={"Connection": "close"})(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body as one message, then what the client sends next."""
    first: Message | None = {"type": "http.request", "body": body, "more_body": False}

    async def replay() -> Message:
        nonlocal first
        if first is not None:
            message, first = first, None
            return message
        return await receive()

    return replay
