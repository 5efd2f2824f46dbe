"""The OpenAPI schema tells the truth about errors.

FastAPI documents only the 2xx answer and a 422 whose body (`HTTPValidationError`, `detail` an
array) is not what this API sends. `document_errors` rewrites the generated schema once, in one
place: every error status an operation can answer, each with the one error body (`ErrorBody`):

* 422 where FastAPI validates something (replacing `HTTPValidationError`);
* 401, 403 and 429 (failed authentications, api/ratelimit.py) on every operation that needs an
  API key (all but `GET /health`);
* 404 where a path id (or a partner id in the body) can name nothing;
* 409, 503, 504 (and the 202 of a journey that took an update but has not recorded it yet) where
  the code raises them (`STATUSES` below, read from the routers, services and api/journeys.py);
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

_IDEMPOTENCY_409 = "the Idempotency-Key was used for a different request, or a concurrent request won"
_START_503 = "the journey could not be started, or its start was not confirmed: retry with the same Idempotency-Key"
_TEMPORAL_503 = DEFAULT_DESCRIPTIONS[503]
# A journey whose workflow task keeps failing answers nothing (`journeys.refuse_if_wedged`).
_WEDGED_503 = (
    f"{_TEMPORAL_503}; or the journey cannot run (its workflow task fails): named in the detail, listed by "
    "GET /ops/retrying"
)
# A workflow update (api/journeys.py `run_update`): the journey's refusals, a deadline, and "taken, not recorded yet".
_UPDATE = {202: DEFAULT_DESCRIPTIONS[202], 503: _WEDGED_503, 504: DEFAULT_DESCRIPTIONS[504]}
_QUERY = {503: _WEDGED_503, 504: "the journey did not answer in time"}  # `journeys.query`
_CODEC = {  # api/routers/codec.py authenticates by itself (an ops key) and reads its body by itself
    401: DEFAULT_DESCRIPTIONS[401],
    403: DEFAULT_DESCRIPTIONS[403],
    409: "payload encryption is off (PAYLOAD_KEYS is not set)",
    422: 'the body is not `{"payloads": [...]}` in protobuf JSON, or a payload cannot be decoded',
    429: DEFAULT_DESCRIPTIONS[429],
}

# What the code raises beyond the rules above (method, path): {status: description}.
STATUSES: dict[tuple[str, str], dict[int, str]] = {
    ("POST", "/cams"): {409: f"a CAM with this email exists, or {_IDEMPOTENCY_409}"},
    ("POST", "/api-keys"): {409: _IDEMPOTENCY_409},
    ("POST", "/policy/simulations"): {409: "a simulation of yours is running: wait for it or cancel it"},
    ("POST", "/partners"): {409: f"a partner with this domain is enrolled, or {_IDEMPOTENCY_409}", 503: _START_503},
    ("PATCH", "/partners/{partner_id}"): {503: "the coverage change was stored; telling its journeys failed"},
    ("GET", "/partners/{partner_id}/onboarding"): _QUERY,
    ("POST", "/partners/{partner_id}/onboarding/milestones/{key}"): {409: "the journey has ended", **_UPDATE},
    ("POST", "/deals"): {
        404: "no partner with this partner_id",
        409: f"this partner already registered this deal, or {_IDEMPOTENCY_409}",
        503: _START_503,
    },
    ("GET", "/deals/{deal_id}/progress"): _QUERY,
    ("POST", "/deals/{deal_id}/decision"): {409: "the deal is no longer pending", **_UPDATE},
    ("POST", "/deals/{deal_id}/stage"): {
        409: "only an approved deal changes stage, as often as the policy's `limits.max_stage_changes`",
        **_QUERY,
    },
    ("POST", "/deals/{deal_id}/extensions"): {
        409: "the deal is not approved, a request is already waiting, or the policy's extensions are used up",
        **_UPDATE,
    },
    ("POST", "/deals/{deal_id}/extensions/decision"): {409: "no extension is pending", **_UPDATE},
    ("POST", "/certifications"): {404: "no partner with this partner_id", 409: _IDEMPOTENCY_409, 503: _START_503},
    ("POST", "/certifications/{cert_id}/renewals"): {
        409: "a renewal is already being applied, or the journey is not running",
        **_UPDATE,
    },
    ("GET", "/ops/retrying"): {503: _TEMPORAL_503, 504: "Temporal did not list the running journeys in time"},
    ("POST", "/ops/journeys/{workflow_id}/resume"): {
        409: "the journey is not waiting for ops, or not running",
        503: _TEMPORAL_503,
    },
    ("GET", "/partners/{partner_id}/funds"): {},
    ("POST", "/partners/{partner_id}/funds/allocations"): {409: f"the period's fund expired, or {_IDEMPOTENCY_409}"},
    ("POST", "/partners/{partner_id}/funds/adjustments"): {
        409: f"the adjustment would take the fund below what is available, the fund expired, or {_IDEMPOTENCY_409}"
    },
    ("POST", "/mdf/requests"): {
        404: "no partner with this partner_id",
        409: f"the fund cannot cover the amount (the detail names what is available), or {_IDEMPOTENCY_409}",
        503: _START_503,
    },
    ("GET", "/mdf/requests/{request_id}"): {},
    ("POST", "/mdf/requests/{request_id}/decision"): {409: "no decision is awaited", **_UPDATE},
    ("POST", "/mdf/requests/{request_id}/resubmission"): {
        409: "the request is not returned, or the fund cannot cover the new amount",
        **_UPDATE,
    },
    ("POST", "/mdf/requests/{request_id}/dates"): {409: "the request is not approved, or it started", **_UPDATE},
    ("POST", "/mdf/requests/{request_id}/start"): {409: "the request is not approved", **_UPDATE},
    ("POST", "/mdf/requests/{request_id}/claim"): {
        409: f"the request cannot be claimed now, or {_IDEMPOTENCY_409}",
        413: "a file, or all of them, over the policy's limits",
        415: "a file whose content is not a type its kind allows",
        429: f"{DEFAULT_DESCRIPTIONS[429]}; or too many uploads at once with this key",
        **_UPDATE,
    },
    ("POST", "/mdf/requests/{request_id}/proofs"): {
        409: "the claim is not returned for proof",
        413: "a file, or all of them, over the policy's limits",
        415: "a file whose content is not a type its kind allows",
        429: f"{DEFAULT_DESCRIPTIONS[429]}; or too many uploads at once with this key",
        **_UPDATE,
    },
    ("POST", "/mdf/requests/{request_id}/claim/decision"): {409: "no claim decision is awaited", **_UPDATE},
    ("POST", "/mdf/requests/{request_id}/payments"): {
        409: "the claim is not approved, or the reference is recorded",
        **_UPDATE,
    },
    ("POST", "/mdf/requests/{request_id}/clawbacks"): {
        409: f"the request is not paid, or its audit period ended, or {_IDEMPOTENCY_409}"
    },
    ("POST", "/qbr/cycles"): {503: _TEMPORAL_503},
    ("GET", "/qbr/cycles/{period}"): {503: _TEMPORAL_503, 504: "the cycle did not answer in time"},
    ("POST", "/partners/{partner_id}/qbr/{period}/meeting"): {
        409: "the QBR has no meeting (a digital review), the meeting took place, or the journey is not running",
        **_UPDATE,
    },
    ("POST", "/partners/{partner_id}/qbr/{period}/notes"): {
        409: "no meeting took place yet, the notes are recorded, or the journey is not running",
        **_UPDATE,
    },
    ("POST", "/partners/{partner_id}/qbr/{period}/action-items/{item_no}/complete"): {
        409: "the action item is already done, or the journey is not running",
        **_UPDATE,
    },
    ("PATCH", "/partners/{partner_id}/qbr/{period}/action-items/{item_no}"): {
        409: "the action item is closed (done or dropped), or the journey is not running",
        **_UPDATE,
    },
    ("DELETE", "/partners/{partner_id}/qbr/{period}/action-items/{item_no}"): {
        409: "the action item is closed (done or dropped), or the journey is not running",
        **_UPDATE,
    },
    ("POST", "/partners/{partner_id}/qbr/{period}/tier-decision"): {
        409: "the tier review is not waiting for a decision",
        **_UPDATE,
    },
    ("POST", "/codec/decode"): _CODEC,
    ("POST", "/codec/encode"): _CODEC,
    ("POST", "/webhooks"): {409: _IDEMPOTENCY_409},
    ("POST", "/webhooks/{subscription_id}/deliveries/{delivery_id}/replay"): {
        409: "the delivery is still pending, or the subscription is deactivated",
        503: _TEMPORAL_503,
    },
    ("POST", "/events/crm"): {
        404: "no deal with this deal_id, or none linked to this crm_opportunity_id",
        409: "the deal is not approved or its journey has ended, or the opportunity is linked to another deal",
        503: _TEMPORAL_503,
    },
    # keyset pagination (api/pagination.py): `after` names a row that does not exist
    ("GET", "/partners"): {404: "`after` names no partner"},
    ("GET", "/deals"): {404: "`after` names no deal"},
    ("GET", "/certifications"): {404: "`after` names no certification"},
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
    for path, item in schema.get("paths", {}).items():
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
            extra = STATUSES.get((method.upper(), path), {})
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
