"""What a route says about itself beyond FastAPI's own arguments, kept on the route:

* `raises`: the error statuses its code answers beyond the general rules of api/openapi.py (e.g.
  409 when the state forbids it, 503/504 from a journey), each with its words for the schema;
* `business_rule`: why a schema-valid request may still be refused with a 422 (a rule of the
  program no JSON Schema can state): the contract fuzz (tests/contract) accepts those 422s;
  `cross_field`: its field-level 422s come from cross-field model validators;
* `upload`: the route takes file uploads: api/limits.py reads its body with the upload limits.

Give it as a route's `openapi_extra=route_meta(...)`. The schema rewrite (api/openapi.py) takes it
out of each operation, so it never reaches /openapi.json; `meta_of(route)` reads it back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.applications import Starlette

KEY = "x-cam-lights-route"  # the operation key FastAPI merges `openapi_extra` into; removed from the schema


@dataclass(frozen=True)
class RouteMeta:
    raises: dict[int, str] = field(default_factory=dict)
    business_rule: str | None = None
    cross_field: bool = False
    upload: bool = False


NONE = RouteMeta()


def route_meta(
    raises: dict[int, str] | None = None,
    *,
    business_rule: str | None = None,
    cross_field: bool = False,
    upload: bool = False,
    openapi: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A route's `openapi_extra`: its metadata, beside the other OpenAPI it adds (`openapi`)."""
    meta = {"raises": dict(raises or {}), "business_rule": business_rule, "cross_field": cross_field, "upload": upload}
    return {**(openapi or {}), KEY: meta}  # plain values: FastAPI encodes the operation as JSON


def _read(meta: dict[str, Any] | None) -> RouteMeta:
    if not meta:
        return NONE
    raises = {int(status): words for status, words in (meta.get("raises") or {}).items()}
    return RouteMeta(raises, meta.get("business_rule"), bool(meta.get("cross_field")), bool(meta.get("upload")))


def meta_of(route: object) -> RouteMeta:
    """The metadata of a route (of any kind: a route without any has none)."""
    return _read((getattr(route, "openapi_extra", None) or {}).get(KEY))


def pop_meta(operation: dict[str, Any]) -> RouteMeta:
    """Take the metadata out of a generated operation (it is not OpenAPI)."""
    return _read(operation.pop(KEY, None))


def routes_of(app: Starlette) -> Iterator[tuple[str, str, RouteMeta]]:
    """(method, path, metadata) of every operation of the app, included routers' routes with their
    prefix (what the schema names: `/deals/{deal_id}`)."""
    for route in iter_route_contexts(app.routes):
        path = route.path_format or route.path  # without convertors: `/leads/{lead_id}`, not `{lead_id:uuid}`
        if path is None:
            continue
        meta = meta_of(route)
        for method in sorted(route.methods or ()):
            yield method, path, meta
