"""The OpenAPI schema tells the truth about errors.

FastAPI documents only the 2xx answer and a 422 whose body (`HTTPValidationError`, `detail` an
array) is not what this API sends. `document_errors` rewrites the generated schema once, in one
place: every error status an operation can answer, each with the one error body (`ErrorBody`):

* 422 where FastAPI validates something (replacing `HTTPValidationError`);
* 401 and 403 on every operation that needs an API key (all but `GET /health`);
* 404 where a path id (or a partner id in the body) can name nothing;
* 409 and 503 where the code raises them (`STATUSES` below, read from the routers and services);
* 413 everywhere (a body over `MAX_BODY_BYTES`, `api/limits.py`) and 500 everywhere.

A description a router gave for a status (its `responses=`) is kept."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from api.errors import ErrorBody
from api.limits import MAX_BODY_BYTES

ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}

DEFAULT_DESCRIPTIONS = {
    401: "no API key, or an unknown or revoked one",
    403: "the key's role or scope does not allow this",
    404: "no such entity (the detail names the id)",
    409: "conflicts with the current state (the detail says how)",
    413: f"request body over {MAX_BODY_BYTES} bytes",
    422: "invalid request: `errors` names each field that was wrong",
    500: "internal error: the detail carries an id that is in the server log",
    503: "Temporal did not answer or refused the start; retry later (with the same Idempotency-Key)",
}

_IDEMPOTENCY_409 = "the Idempotency-Key was used for a different request, or a concurrent request won"
_START_503 = "the journey could not be started, or its start was not confirmed: retry with the same Idempotency-Key"
_TEMPORAL_503 = "Temporal did not answer in time; retry later"

# What the code raises beyond the rules above (method, path): {status: description}.
STATUSES: dict[tuple[str, str], dict[int, str]] = {
    ("POST", "/cams"): {409: f"a CAM with this email exists, or {_IDEMPOTENCY_409}"},
    ("POST", "/api-keys"): {409: _IDEMPOTENCY_409},
    ("POST", "/partners"): {409: f"a partner with this domain is enrolled, or {_IDEMPOTENCY_409}", 503: _START_503},
    ("PATCH", "/partners/{partner_id}"): {503: "the coverage change was stored; telling its journeys failed"},
    ("GET", "/partners/{partner_id}/onboarding"): {503: _TEMPORAL_503},
    ("POST", "/partners/{partner_id}/onboarding/milestones/{key}"): {409: "the journey has ended", 503: _TEMPORAL_503},
    ("POST", "/deals"): {
        404: "no partner with this partner_id",
        409: f"this partner already registered this deal, or {_IDEMPOTENCY_409}",
        503: _START_503,
    },
    ("GET", "/deals/{deal_id}/progress"): {503: _TEMPORAL_503},
    ("POST", "/deals/{deal_id}/decision"): {409: "the deal is no longer pending", 503: _TEMPORAL_503},
    ("POST", "/deals/{deal_id}/stage"): {409: "only an approved deal changes stage", 503: _TEMPORAL_503},
    ("POST", "/deals/{deal_id}/extensions"): {
        409: "the deal is not approved, a request is already waiting, or the policy's extensions are used up",
        503: _TEMPORAL_503,
    },
    ("POST", "/deals/{deal_id}/extensions/decision"): {409: "no extension is pending", 503: _TEMPORAL_503},
    ("POST", "/certifications"): {404: "no partner with this partner_id", 409: _IDEMPOTENCY_409, 503: _START_503},
    ("POST", "/certifications/{cert_id}/renewals"): {
        409: "a renewal is already being applied, or the journey is not running",
        503: _TEMPORAL_503,
    },
}

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_BODY_REF}}}


def _description(status: int, responses: dict[str, Any], extra: dict[int, str]) -> str:
    """The table's words, else the router's (`responses=`), else the default; a router's words
    for 403/404 name one case more beside the general one."""
    if status in extra:
        return extra[status]
    given = responses.get(str(status), {}).get("description")
    if not given or given == "Validation Error":  # FastAPI's own words for its 422
        return DEFAULT_DESCRIPTIONS[status]
    if status in (403, 404):
        return f"{DEFAULT_DESCRIPTIONS[status]}; or {given}"
    return given


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a generated OpenAPI schema in place (and return it)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema
    known = set()
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            known.add((method.upper(), path))
            responses = operation.setdefault("responses", {})
            statuses = {413, 500}
            if "422" in responses:
                statuses.add(422)
            if operation.get("security"):
                statuses |= {401, 403}
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses.add(404)
            extra = STATUSES.get((method.upper(), path), {})
            statuses |= set(extra)
            for status in sorted(statuses):
                responses[str(status)] = _error_response(_description(status, responses, extra))
            operation["responses"] = dict(sorted(responses.items()))
    unknown = set(STATUSES) - known
    assert not unknown, f"api/openapi.py STATUSES names operations that do not exist: {sorted(unknown)}"
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, no longer referenced
        if f'"#/components/schemas/{name}"' not in json.dumps(schema):
            components.pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """`app.openapi()` (and /openapi.json, /docs) serve the rewritten schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
