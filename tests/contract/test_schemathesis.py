"""The API keeps its OpenAPI contract under a property-based fuzz (schemathesis).

Every operation of the schema gets generated requests (valid and invalid) against the real app
in-process, once per role (ops, a CAM, a partner), with **all** of schemathesis' default checks:
no server error, every status and body (errors included) documented, content types and headers
as declared, invalid data refused, valid data accepted, auth enforced, unknown methods answered
405. Path ids and partner ids are drawn half the time from a few real rows (CAMs, partners,
deals, a certification) so the fuzz reaches past the 404s into the journeys.

Repeatable: a fixed seed, derandomized generation and a fixed example count (`SEED`,
`MAX_EXAMPLES`); the seeded rows get new ids on each run, so the requests are the same up to ids.

Nothing is excluded: every operation in the schema is fuzzed with every default check. (The
one-click link pages, `/deals/links/{token}`, are HTML for a browser and not in the schema.)

One check is widened, for named operations only, each with its reason (`BUSINESS_RULES`, read
from the routes' `route_meta(business_rule=...)`):
`positive_data_acceptance` also accepts a 422 where the API refuses a schema-valid request for a
reason no JSON Schema can state (an unknown CAM, a tier that needs a CAM, a date in the past). In
exchange `field_rules_are_documented` (added to every call) fails any schema-valid request that
a *field validator* refused (a 422 with `errors`): a field's rules must be in the schema."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
import pytest_asyncio
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi as schemathesis_asgi

from api.app import create_app
from api.routemeta import routes_of
from core.settings import Settings
from core.temporal import connect
from domain.enums import Role
from store.db import make_engine, make_sessionmaker
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.waiting import eventually
from worker.main import build_worker

# schemathesis 4.32.5 draws dictionary values and some mutations with the global `random` inside its
# strategies; Hypothesis seeds that module per example (the run stays repeatable) and warns each time.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)

SEED = 20260801
MAX_EXAMPLES = 30  # per operation and role, in the fuzzing phase (examples and coverage phases add their own)
REQUEST_TIMEOUT = 30  # seconds: an answer slower than this is a failure (a wedged request), not a hang


class ThreadWorker:
    """A worker for the test's task queue on its own event loop and thread: while schemathesis
    (synchronous) runs, the test's event loop is blocked, so the `worker` fixture could not poll."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="contract-worker", daemon=True)

    def __enter__(self) -> ThreadWorker:
        self.thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def _call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.engine = make_engine(self.settings.database_url)
        client = await connect(self.settings)
        self.worker = build_worker(client, self.settings, make_sessionmaker(self.engine))
        self.task = asyncio.ensure_future(self.worker.run())

    async def _stop(self) -> None:
        await self.worker.shutdown()
        with contextlib.suppress(Exception):
            await self.task
        await self.engine.dispose()


@pytest.fixture
def thread_worker(settings: Settings) -> Iterator[ThreadWorker]:
    with ThreadWorker(settings) as w:
        yield w


@dataclass
class Seed:
    keys: dict[str, dict[str, str]]
    cams: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    deals: list[str] = field(default_factory=list)
    certs: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def seeded(api, ops, sessionmaker, thread_worker) -> Seed:
    """Two CAMs, three partners (gold with CAM A, silver with CAM B, registered), a deal pending
    the CAM's decision, an approved one, a certification; keys for ops, CAM A and the gold partner."""
    cam_a = await create_cam(api, ops, email="casey@vendor.test", name="Casey")
    cam_b = await create_cam(api, ops, email="robin@vendor.test", name="Robin")
    gold = await enrol(api, ops, tier="gold", cam_id=cam_a["id"], domain="gold.test", name="Gold Networks")
    silver = await enrol(api, ops, tier="silver", cam_id=cam_b["id"], domain="silver.test", name="Silver Systems")
    small = await enrol(api, ops, tier="registered", domain="small.test", name="Small Shop")
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam_a["id"])
    gold_h = await new_key(sessionmaker, Role.partner, partner_id=gold["id"])
    small_h = await new_key(sessionmaker, Role.partner, partner_id=small["id"])
    r = await api.post("/deals", json=deal_body(), headers=gold_h)
    assert r.status_code == 201, r.text
    pending = r.json()
    r = await api.post(
        "/deals",
        json=deal_body(customer_name="Initech", customer_domain="initech.com", amount="2500.00"),
        headers=small_h,
    )
    assert r.status_code == 201, r.text
    approved = r.json()

    async def is_approved() -> bool:
        return (await api.get(f"/deals/{approved['id']}", headers=ops)).json()["state"] == "approved"

    await eventually(is_approved, what="auto approval of the registered partner's deal")
    now = datetime.now(UTC)
    r = await api.post(
        "/certifications",
        json={
            "partner_id": gold["id"],
            "person_name": "Pat Engineer",
            "person_email": "pat@gold.test",
            "track": "Network Associate",
            "product_category": "network",
            "issued_at": (now - timedelta(days=30)).isoformat(),
            "expires_at": (now + timedelta(days=300)).isoformat(),
        },
        headers=ops,
    )
    assert r.status_code == 201, r.text
    return Seed(
        keys={"ops": ops, "cam": cam_h, "partner": gold_h},
        cams=[cam_a["id"], cam_b["id"]],
        partners=[gold["id"], silver["id"], small["id"]],
        deals=[pending["id"], approved["id"]],
        certs=[r.json()["id"]],
    )


# schemathesis' default for positive_data_acceptance, and 422.
POSITIVE_WITH_422 = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]
# Operations whose 422 includes rules of the business, not of the request's shape: schema-valid
# requests may be refused there, with a 422 that names the rule (and has no `errors` list). Each
# says so on its route, `route_meta(business_rule=...)` (api/routemeta.py), with its reason.
ROUTES = list(routes_of(create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)))
BUSINESS_RULES = {f"{method} {path}": meta.business_rule for method, path, meta in ROUTES if meta.business_rule}
# Operations whose field-level 422s (with `errors`) come from cross-field model validators that no
# JSON Schema states (`route_meta(cross_field=True)`): `field_rules_are_documented` does not apply to them.
CROSS_FIELD_RULES = {f"{method} {path}" for method, path, meta in ROUTES if meta.cross_field}


def field_rules_are_documented(ctx, response, case) -> None:
    """A schema-valid request is never refused by a field's validator: a 422 with `errors` (what
    request validation answers) on a positive case means the schema does not state a rule the
    field checks."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return
    if case.operation.label in CROSS_FIELD_RULES:
        return
    body = response.json()
    if body.get("errors"):
        raise AssertionError(
            f"{case.operation.label}: a schema-valid request was refused by field validation: {body['detail']}"
        )


def contract_config(seed: Seed, token: str) -> SchemathesisConfig:
    half = 0.5  # half of the generated ids are real rows, the other half unknown ones
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # Hypothesis' "filter_too_much" health check is about how efficiently examples are drawn
            # (an operation whose every schema-valid body is rare: POST /certifications draws 7 bodies
            # for 50 it discards, with two zoned date-times), not about the API. Every drawn example is
            # still sent and checked. (The pytest test takes it from its @hypothesis.settings.)
            "suppress-health-check": ["filter_too_much"],
            "request-timeout": REQUEST_TIMEOUT,
            "auth": {"openapi": {"ApiKey": {"bearer": token}}},
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_WITH_422}},
                }
                for name in BUSINESS_RULES
            ],
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "dictionaries": {
                "cams": {"values": seed.cams},
                "partners": {"values": seed.partners},
                "deals": {"values": seed.deals},
                "certs": {"values": seed.certs},
                "milestones": {"values": ["portal_access", "first_training", "business_plan", "first_deal"]},
            },
            "parameters": {
                "path.cam_id": {"dictionary": "cams", "probability": half},
                "path.partner_id": {"dictionary": "partners", "probability": half},
                "path.deal_id": {"dictionary": "deals", "probability": half},
                "path.cert_id": {"dictionary": "certs", "probability": half},
                "path.key": {"dictionary": "milestones", "probability": half},
                "body.partner_id": {"dictionary": "partners", "probability": half},
                "body.cam_id": {"dictionary": "cams", "probability": half},
                "query.partner_id": {"dictionary": "partners", "probability": half},
                "query.cam_id": {"dictionary": "cams", "probability": half},
            },
        }
    )


@pytest.fixture(params=["ops", "cam", "partner"])
def role(request) -> str:
    return request.param


@pytest.fixture
def contract_schema(settings: Settings, seeded: Seed, role: str) -> Iterator[schemathesis.BaseSchema]:
    """The app (its lifespan run by schemathesis, on schemathesis' own event loop thread); one
    run per `role` (a fresh database each). The fuzz sends thousands of requests without a key
    or with a forged one, from one client: the failed-authentication limiter (its own tests are
    in tests/kit/test_rate_limits.py) is set high enough not to answer 429 to all that follows."""
    settings = settings.model_copy(update={"auth_failures_per_minute": 1_000_000})
    app = create_app(settings, reconcile_every=None)
    try:
        token = seeded.keys[role]["Authorization"].removeprefix("Bearer ")
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=contract_config(seeded, token))
    finally:
        schemathesis_asgi.shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.filter_too_much])  # see contract_config
def test_api_keeps_its_contract(case) -> None:
    case.call_and_validate(additional_checks=[field_rules_are_documented])
