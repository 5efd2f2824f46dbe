"""Every error is JSON that says what was wrong: {"detail": "...", "errors": [...]}.

One shape (`ErrorBody`) for every status: validation errors (422, with `errors` naming each
field), every refusal a service raises (a `domain.errors.DomainError`: its kind decides the
status, `DOMAIN_STATUS` is the one place that maps them), every `HTTPException` a router or the
edge raises, Starlette's own answers (404 for an unknown path, 405 for a method a path does not
have), a Temporal that does not answer (503), and anything unexpected (500, with an id that is in
the log next to the traceback)."""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import (
    Conflict,
    DomainError,
    Gone,
    Invalid,
    NotFound,
    Pending,
    Refused,
    TimedOut,
    TooLarge,
    Unavailable,
    Unsupported,
)

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="the field, dotted (e.g. `tiers.gold.protection_days`, `query.limit`)")
    location: list[str | int] = Field(description="where it is: `body`, `query`, `path` or `header`, then the path")
    message: str = Field(description="what is wrong with it")


def _errors_never_null(schema: dict[str, Any]) -> None:
    schema["properties"]["errors"].pop("default", None)  # absent, never null


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(json_schema_extra=_errors_never_null)

    detail: str = Field(description="what was wrong, in words")
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        None, description="422 only: each field that was wrong (absent on other statuses)"
    )


def error_response(status_code: int, detail: str, *, errors: list[FieldError] | None = None, headers=None) -> Response:
    if status_code < 200 or status_code in (204, 205, 304):  # no body allowed
        return Response(status_code=status_code, headers=headers)
    body = ErrorBody(detail=detail, errors=errors).model_dump(mode="json", exclude_none=True)
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _location(loc: tuple) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


async def validation_handler(request: Request, exc: RequestValidationError) -> Response:
    errors = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        loc = tuple(err.get("loc", ()))
        errors.append(FieldError(field=_field(loc), location=_location(loc), message=msg))
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return error_response(422, f"invalid request: {summary}", errors=errors)


def _detail_text(detail: Any) -> str:
    return detail if isinstance(detail, str) else str(detail)


def _phrase(status_code: int) -> str | None:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return None


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route offers for this path. (Starlette names only the methods of the first
    route whose path matched, so `/cams` answered `Allow: POST` although `GET /cams` exists.)"""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """`HTTPException` raised by the code, and Starlette's own 404 (no such path) and 405."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    detail = _detail_text(exc.detail)
    if exc.status_code == 405 and "Allow" in headers:  # routing: no route of this path has the method
        headers["Allow"] = _allowed_methods(request) or headers["Allow"]
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's "There was an error parsing the body": say which error
        detail = f"the body is not JSON in UTF-8 ({exc.__cause__})"
    elif detail == _phrase(exc.status_code):
        # Starlette's bare answers ("Not Found", "Method Not Allowed"): say what was asked.
        if exc.status_code == 404:
            detail = f"not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}; allowed: {headers.get('Allow')}"
    return error_response(exc.status_code, detail, headers=headers or None)


# The status of each kind of refusal a service raises (a kind not listed answers as its nearest listed base).
DOMAIN_STATUS: dict[type[DomainError], int] = {
    Pending: 202,
    Refused: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    Unsupported: 415,
    Invalid: 422,
    Unavailable: 503,
    TimedOut: 504,
    DomainError: 422,  # a bare DomainError: the request broke a rule
}


def status_of(exc: DomainError | StarletteHTTPException) -> int:
    """The HTTP status of a refusal, whether a service raised it (its kind) or the edge (its status)."""
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    return next(DOMAIN_STATUS[kind] for kind in type(exc).__mro__ if kind in DOMAIN_STATUS)


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    """A service's refusal: the status of its kind, its words, its headers (e.g. `Retry-After`)."""
    assert isinstance(exc, DomainError)
    return error_response(status_of(exc), exc.detail, headers=exc.headers or None)


# Temporal statuses that mean "not reachable or overloaded now": the caller should retry.
TEMPORAL_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}


async def temporal_error_handler(request: Request, exc: Exception) -> Response:
    """Temporal unreachable, overloaded or too slow: 503 (retry later). Any other RPC error is a bug: 500."""
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        detail = "the journey did not answer in time; retry later (repeating the request is safe)"
        return error_response(503, detail, headers={"Retry-After": "5"})
    assert isinstance(exc, RPCError)
    if exc.status in TEMPORAL_UNAVAILABLE:
        status = exc.status.name if exc.status else "error"
        log.warning("Temporal unavailable on %s %s: %s %s", request.method, request.url.path, status, exc.message)
        return error_response(503, f"Temporal is not available ({status}); retry later", headers={"Retry-After": "5"})
    return internal_error(request.scope, exc)


def internal_error(scope: Scope, exc: BaseException) -> Response:
    """A 500 whose id is logged with the traceback; the caller learns nothing more about the inside."""
    error_id = uuid.uuid4()
    log.error("internal error (id %s) on %s %s", error_id, scope.get("method"), scope.get("path"), exc_info=exc)
    return error_response(500, f"internal error (id {error_id}); it was logged")


class CatchAll:
    """Pure ASGI middleware: an exception nothing else handled becomes a JSON 500 (logged with an
    id) instead of a plain-text answer, unless the answer had already started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_watched)
        except Exception as exc:
            if started:
                raise
            if isinstance(exc, (OperationalError, InterfaceError)):  # e.g. a key read before the body
                await (await database_error_handler(Request(scope), exc))(scope, receive, send)
                return
            if isinstance(exc, PoolTimeout):
                await (await busy_handler(Request(scope), exc))(scope, receive, send)
                return
            await internal_error(scope, exc)(scope, receive, send)


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """PostgreSQL down or unreachable: 503, retry later (nothing was written: the transaction failed)."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, str(exc).splitlines()[0])
    return error_response(
        503, "the database is not available; nothing was written, retry later", headers={"Retry-After": "5"}
    )


async def busy_handler(request: Request, exc: Exception) -> Response:
    """Overloaded: no database connection of this process's pool came free in time. 503, retry later."""
    log.warning("no database connection free on %s %s: %s", request.method, request.url.path, str(exc)[:200])
    detail = "the API is overloaded (no database connection came free in time); retry later"
    return error_response(503, detail, headers={"Retry-After": "5"})


def install(app: FastAPI) -> None:
    app.exception_handler(RequestValidationError)(validation_handler)  # = add_exception_handler, typed
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RPCError, temporal_error_handler)
    app.add_exception_handler(OperationalError, database_error_handler)
    app.add_exception_handler(InterfaceError, database_error_handler)
    app.add_exception_handler(PoolTimeout, busy_handler)
    app.add_exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError, temporal_error_handler)
    app.add_middleware(CatchAll)  # inside Starlette's ServerErrorMiddleware, outside everything else
