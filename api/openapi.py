"""The OpenAPI schema tells the truth about errors.

FastAPI documents only the 2xx answer and a 422 whose body (`HTTPValidationError`, `detail` an
array) is not what this API sends. `document_errors` rewrites the generated schema once, in one
place: every error status an operation can answer, each with the one error body (`ErrorBody`):

* 422 where FastAPI validates something (replacing `HTTPValidationError`);
* 401, 403 and 429 (failed authentications, api/ratelimit.py) on every operation that needs an
  API key (all but `GET /health`);
* 404 where a path id (or a partner id in the body) can name nothing;
* 409, 503, 504 (and the 202 of a journey that took an update but has not recorded it yet) where
  the code raises them: each route says so itself, `openapi_extra=route_meta(raises={...})`
  (api/routemeta.py), with words shared from here (`UPDATE`, `QUERY`, `IDEMPOTENCY_409`, ...);
* 400 where there is a body to read (FastAPI's answer to a body that is not UTF-8), and 408 (the
  body did not arrive in time, `api/limits.py`);
* 413 everywhere (a body over `MAX_BODY_BYTES`, `api/limits.py`), 500 and 503 (the database or
  Temporal not available) everywhere.

A description a router gave for a status (its `responses=`) is kept."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from api.errors import ErrorBody
from api.limits import MAX_BODY_BYTES
from api.routemeta import pop_meta

ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}

DEFAULT_DESCRIPTIONS = {
    202: "taken by the journey, not recorded yet: it will apply (`Location` names where to watch it)",
    400: "the body could not be read as JSON (e.g. not UTF-8)",
    408: "the request body did not arrive in time (the connection is closed)",
    401: "no API key, or an unknown or revoked one",
    403: "the key's role or scope does not allow this",
    404: "no such entity (the detail names the id)",
    409: "conflicts with the current state (the detail says how)",
    413: f"request body over {MAX_BODY_BYTES} bytes",
    415: "a file whose content is not of an allowed type",
    422: "invalid request: `errors` names each field that was wrong (a rule of the program: only `detail`)",
    429: "too many failed authentications from this client lately; retry after `Retry-After` seconds",
    500: "internal error: the detail carries an id that is in the server log",
    503: "the database or Temporal is not available; retry later",
    504: "the journey did not answer in time (is a worker running?); it may still apply: check before retrying",
}

IDEMPOTENCY_409 = "the Idempotency-Key was used for a different request, or a concurrent request won"
START_503 = "the journey could not be started, or its start was not confirmed: retry with the same Idempotency-Key"
TEMPORAL_503 = DEFAULT_DESCRIPTIONS[503]
# A journey whose workflow task keeps failing answers nothing (`journeys.refuse_if_wedged`).
WEDGED_503 = (
    f"{TEMPORAL_503}; or the journey cannot run (its workflow task fails): named in the detail, listed by "
    "GET /ops/retrying"
)
# Words the routes' `route_meta(raises=...)` share (api/routemeta.py).
# A workflow update (api/journeys.py `run_update`): the journey's refusals, a deadline, and "taken, not recorded yet".
UPDATE = {202: DEFAULT_DESCRIPTIONS[202], 503: WEDGED_503, 504: DEFAULT_DESCRIPTIONS[504]}
QUERY = {503: WEDGED_503, 504: "the journey did not answer in time"}  # `journeys.query`
CODEC = {  # api/routers/codec.py authenticates by itself (an ops key) and reads its body by itself
    401: DEFAULT_DESCRIPTIONS[401],
    403: DEFAULT_DESCRIPTIONS[403],
    409: "payload encryption is off (PAYLOAD_KEYS is not set)",
    422: 'the body is not `{"payloads": [...]}` in protobuf JSON, or a payload cannot be decoded',
    429: DEFAULT_DESCRIPTIONS[429],
}

# What api/idempotency.py accepts (else 422).
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[\\x20-\\x7e]+$",
    "description": "1 to 200 printable ASCII characters; a retry with the same key returns the stored answer",
}

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


_HEADERS = {  # headers some of these answers carry
    202: {"Location": "where to watch the journey apply it"},
    401: {"WWW-Authenticate": "`Bearer`"},
    429: {"Retry-After": "seconds to wait"},
    503: {"Retry-After": "seconds to wait (when the API knows)"},
}


def _error_response(status: int, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_BODY_REF}},
    }
    if status in _HEADERS:
        response["headers"] = {
            name: {"description": text, "required": False, "schema": {"type": "string"}}
            for name, text in _HEADERS[status].items()
        }
    return response


def _description(status: int, responses: dict[str, Any], extra: dict[int, str]) -> str:
    """The route's `raises` words, else the router's (`responses=`), else the default; a router's words
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
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = {413, 500, 503}  # 503: the database or Temporal down, on any operation
            if "requestBody" in operation:
                statuses |= {400, 408}
            if "422" in responses:
                statuses.add(422)
            if operation.get("security"):
                statuses |= {401, 403, 429}
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses.add(404)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
                    parameter["schema"] = IDEMPOTENCY_KEY_SCHEMA
            extra = pop_meta(operation).raises
            statuses |= set(extra)
            for status in sorted(statuses):
                if status < 300 and str(status) in responses:  # the operation's own success answer
                    continue
                if status == 503 and "503" in responses and 503 not in extra:  # e.g. /health's own 503 body
                    continue
                responses[str(status)] = _error_response(status, _description(status, responses, extra))
            operation["responses"] = dict(sorted(responses.items()))
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
