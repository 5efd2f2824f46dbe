"""The app's routes as declared (each `APIRoute` with its dependant), whichever router included them."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    pending = list(app.router.routes)
    while pending:
        route = pending.pop(0)
        original = getattr(route, "original_router", None)  # an included router (FastAPI >= 0.16x)
        if original is not None:
            pending.extend(original.routes)
        elif isinstance(route, APIRoute):
            yield route
