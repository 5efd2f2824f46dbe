"""Every error answer is JSON `{"detail": "...", "errors": [...]?}` and the OpenAPI schema says so.

The app is built but not started (no lifespan): nothing here reaches the database or Temporal.
Routes that fail on purpose are added to a fresh app instance in the test, never to the
production code."""

from __future__ import annotations

import json
import logging
import re
import uuid

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.auth import Principal, check_role
from api.errors import DOMAIN_STATUS, status_of
from api.limits import MAX_BODY_BYTES
from api.routemeta import KEY, routes_of
from core.settings import Settings
from domain import errors as domain_errors
from domain.enums import Role

pytestmark = pytest.mark.unit

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
# Without a key a body to a keyed route is refused (401) before it is read; a well-formed one lets it
# be read (and FastAPI reads it before the key is looked up, so no database is needed here).
WELL_FORMED_KEY = {"content-type": "application/json", "authorization": "Bearer cl_not-looked-up-before-the-body"}


def fresh_app():
    return create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)


def client(app) -> httpx.AsyncClient:
    # raise_app_exceptions: an exception that escaped the app would fail the test, not become a 500
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    return httpx.AsyncClient(transport=transport, base_url="http://camlights.test")


async def test_an_unhandled_exception_is_a_json_500_with_an_id_that_is_logged(caplog):
    app = fresh_app()

    @app.get("/test-only/boom")
    async def boom():
        raise RuntimeError("the secret inside that must not leak")

    with caplog.at_level(logging.ERROR, logger="api.errors"):
        async with client(app) as api:
            r = await api.get("/test-only/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"detail"}
    match = re.fullmatch(r"internal error \(id ([0-9a-f-]{36})\); it was logged", body["detail"])
    assert match, body
    assert "secret" not in r.text
    logged = [rec for rec in caplog.records if match.group(1) in rec.getMessage()]
    assert logged and logged[0].exc_info and "the secret inside" in str(logged[0].exc_info[1])


async def test_temporal_unavailable_is_a_json_503_to_retry():
    app = fresh_app()

    @app.get("/test-only/temporal-down")
    async def temporal_down():
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    async with client(app) as api:
        r = await api.get("/test-only/temporal-down")
    assert r.status_code == 503 and r.headers["retry-after"]
    assert "Temporal is not available" in r.json()["detail"]


async def test_a_body_over_the_limit_is_413_before_anything_reads_it():
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'  # 2 MiB
    async with client(fresh_app()) as api:
        r = await api.post("/cams", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json() == {"detail": f"request body too large: the limit is {MAX_BODY_BYTES} bytes"}

        async def chunks():  # no Content-Length: counted as it arrives
            for _ in range(32):
                yield b"x" * 65536

        r = await api.post("/cams", content=chunks(), headers=WELL_FORMED_KEY)
        assert r.status_code == 413 and "request body too large" in r.json()["detail"]


async def test_an_unknown_path_and_an_unknown_method_are_json():
    async with client(fresh_app()) as api:
        r = await api.get("/no/such/path")
        assert r.status_code == 404
        assert r.json() == {"detail": "not found: GET /no/such/path"}

        r = await api.delete("/cams")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, POST"  # every method of the path, not just the first route's
        assert r.json()["detail"] == "method DELETE is not allowed on /cams; allowed: GET, POST"


async def test_a_validation_error_is_a_string_detail_with_a_list_of_fields():
    app = fresh_app()

    @app.get("/test-only/versions/{version}")
    async def version(version: int):
        return {}

    async with client(app) as api:
        r = await api.get("/test-only/versions/zero")
    assert r.status_code == 422
    body = r.json()
    assert (
        body["detail"]
        == "invalid request: path.version: Input should be a valid integer, unable to parse string as an integer"
    )
    assert body["errors"] == [
        {
            "field": "path.version",
            "location": ["path", "version"],
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]


async def test_a_body_that_is_not_utf8_is_a_json_400():
    async with client(fresh_app()) as api:
        r = await api.post("/cams", content=b'{"name": "\xff"}', headers=WELL_FORMED_KEY)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("the body is not JSON in UTF-8")


def test_the_schema_documents_every_error_with_the_error_body():
    schema = fresh_app().openapi()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert components["ErrorBody"]["required"] == ["detail"]
    assert components["ErrorBody"]["properties"]["detail"]["type"] == "string"
    assert components["ErrorBody"]["properties"]["errors"]["type"] == "array"

    deals = schema["paths"]["/deals"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "413", "422", "429", "500", "503"):
        assert deals[status]["content"]["application/json"]["schema"] == ERROR_BODY, status
    assert "lapsed certification" in deals["403"]["description"]  # the router's words are kept

    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"413", "500"} <= set(responses), (method, path)
            if operation.get("security"):
                assert {"401", "403", "429"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status, response in responses.items():
                if status >= "400" and (method, path) != ("get", "/health"):
                    assert response["content"]["application/json"]["schema"] == ERROR_BODY, (method, path, status)
    health = schema["paths"]["/health"]["get"]
    assert "security" not in health
    # /health answers 503 with its report, which also says in `detail` what does not answer
    assert health["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }
    assert components["Health"]["properties"]["detail"]


def test_each_route_documents_the_statuses_it_says_it_raises_in_its_words():
    """`route_meta(raises=...)` on a route (api/routemeta.py) is what the schema documents; the
    metadata itself is not OpenAPI and never reaches /openapi.json."""
    app = fresh_app()
    schema = app.openapi()
    assert KEY not in json.dumps(schema)
    raising = [(method, path, meta) for method, path, meta in routes_of(app) if meta.raises]
    assert len(raising) > 40  # the journeys' and the platform's routes
    for method, path, meta in raising:
        responses = schema["paths"][path][method.lower()]["responses"]
        for status, words in meta.raises.items():
            assert str(status) in responses, (method, path, status)
            if status >= 300:
                assert responses[str(status)]["description"] == words, (method, path, status)


def test_only_the_routes_marked_as_uploads_take_the_upload_limits():
    marked = {(method, path) for method, path, meta in routes_of(fresh_app()) if meta.upload}
    assert marked == {
        ("POST", "/mdf/requests/{request_id}/claim"),
        ("POST", "/mdf/requests/{request_id}/proofs"),
        ("POST", "/portal/mdf/{request_id}/claim"),  # the partner portal's claim form (its files)
        ("POST", "/portal/mdf/{request_id}/proofs"),
    }


# ------------------------------------------------------------------ refusals a service raises (domain/errors.py)

KINDS = {
    domain_errors.Pending: 202,
    domain_errors.Refused: 403,
    domain_errors.NotFound: 404,
    domain_errors.Conflict: 409,
    domain_errors.Gone: 410,
    domain_errors.TooLarge: 413,
    domain_errors.Unsupported: 415,
    domain_errors.Invalid: 422,
    domain_errors.Unavailable: 503,
    domain_errors.TimedOut: 504,
}


@pytest.mark.parametrize(("kind", "status"), KINDS.items(), ids=lambda v: getattr(v, "__name__", str(v)))
async def test_each_kind_of_refusal_answers_its_status_with_the_error_body(kind, status):
    app = fresh_app()

    @app.get("/refuse")
    async def refuse():
        raise kind("what was wrong, in words", headers={"Retry-After": "7"})

    async with client(app) as c:
        r = await c.get("/refuse")
    assert status_of(kind("x")) == status
    assert r.status_code == status
    assert r.json() == {"detail": "what was wrong, in words"}
    assert r.headers["Retry-After"] == "7"


def test_every_kind_of_refusal_has_a_status():
    kinds = {
        k for k in vars(domain_errors).values() if isinstance(k, type) and issubclass(k, domain_errors.DomainError)
    }
    assert kinds <= set(DOMAIN_STATUS)
    assert {k: DOMAIN_STATUS[k] for k in KINDS} == KINDS


async def test_a_refusal_from_a_service_reaches_the_client_as_the_same_json_as_an_http_exception():
    """What a service raised as HTTPException before answers byte for byte the same as a DomainError."""
    from fastapi import HTTPException

    app = fresh_app()
    cam = Principal(key_id=uuid.uuid4(), role=Role.cam, cam_id=uuid.uuid4(), partner_id=None)

    @app.get("/service")
    async def service():
        check_role(cam, Role.ops)  # a platform service's refusal (api/auth.py)

    @app.get("/before")
    async def before():
        raise HTTPException(403, detail="this action needs the role ops; your key has the role cam")

    @app.get("/pending")
    async def pending():
        raise domain_errors.Pending("taken, not recorded yet", headers={"Location": "/deals/1/progress"})

    @app.get("/pending-before")
    async def pending_before():
        raise HTTPException(202, detail="taken, not recorded yet", headers={"Location": "/deals/1/progress"})

    async with client(app) as c:
        for now, then in (("/service", "/before"), ("/pending", "/pending-before")):
            a, b = await c.get(now), await c.get(then)
            assert (a.status_code, a.content, a.headers.get("Location")) == (
                b.status_code,
                b.content,
                b.headers.get("Location"),
            )
    assert a.status_code == 202
