"""Every error is JSON that says what was wrong: {"detail": "...", "errors": [...]}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        msg = err.get("msg", "invalid")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        errors.append(
            {"field": _field(tuple(err.get("loc", ()))), "location": list(err.get("loc", ())), "message": msg}
        )
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": f"invalid request: {summary}", "errors": errors})


def install(app: FastAPI) -> None:
    app.exception_handler(RequestValidationError)(validation_handler)  # = add_exception_handler, typed
