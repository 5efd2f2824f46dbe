"""The journey registry and the shape every journey shares: a journey registered in
core/registry.py has its files by the same names in the same places, its policy section, its
messages and its journey-scoped activity names. Adding a journey that misses one fails here."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow

from api.auth import Principal
from api.schemas import ApiKeyCreate
from core import registry
from core.journey import LinkKind
from core.settings import Settings
from domain import events, links, signin
from domain import journeys as shared
from domain.enums import Role
from domain.links import Claims, LinkClaims, LinkInvalid, make_token, read_token
from domain.policy import SECTIONS as POLICY_SECTIONS
from domain.policy import ProgramPolicy

ROOT = Path(__file__).resolve().parents[2]
SPECS = registry.JOURNEYS
IDS = [s.name for s in SPECS]
SECRET = "registry-test-secret"

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_layer_has_the_journey_by_its_name(spec):
    name = spec.name
    for path in (
        f"journeys/{name}/manifest.py",
        f"journeys/{name}/domain.py",
        f"journeys/{name}/workflow.py",
        f"journeys/{name}/activities.py",
        f"journeys/{name}/models.py",
        f"journeys/{name}/router.py",
        f"journeys/{name}/schemas.py",
        f"journeys/{name}/service.py",
        f"journeys/{name}/web.py",
        f"tests/{name}/test_workflow.py",
        f"tests/{name}/test_api.py",
        f"tests/{name}/test_replay.py",
    ):
        assert (ROOT / path).is_file(), f"journey {name!r} has no {path}"
    assert any(spec.mail_templates.glob("*.subject.j2")), f"no email templates for {name}"
    assert any((ROOT / "tests" / name / "histories").glob(f"{name}-*.json")), f"no recorded histories for {name}"
    assert importlib.import_module(f"journeys.{name}.domain").JOURNEY == name
    assert name in ProgramPolicy.model_fields, f"the program policy has no '{name}' section"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_journey_answers_the_shared_messages(spec):
    defn = workflow._Definition.must_from_class(spec.workflow)
    assert shared.PROGRESS in defn.queries
    if spec.follows_coverage:
        assert shared.CHANGE_COVERAGE in defn.signals


def test_activity_names_are_scoped_by_journey_and_unique():
    resources = registry.Resources(
        sessionmaker=None, mailer=None, settings=Settings(_env_file=None, environment="development")
    )  # type: ignore[arg-type]
    names = [activity._Definition.must_from_callable(fn).name for fn in registry.activities(resources)]
    assert len(names) == len(set(names)), "an activity name is registered twice"
    legacy = set(shared.LEGACY_ACTIVITY_NAMES.values())
    for spec in SPECS:
        legacy |= set(spec.legacy_activity_names.values())
    shared_names = shared.SHARED_ACTIVITY_NAMES
    scoped = {n for n in names if n not in legacy}
    prefixes = {f"{s.name}." for s in SPECS}
    assert all(n in shared_names or any(n.startswith(p) for p in prefixes) for n in scoped), sorted(scoped)
    assert legacy <= set(names), "journeys replaying old histories need their old activity names registered"


def test_registry_names_are_unique_and_the_worker_runs_every_workflow():
    assert len(IDS) == len(set(IDS))
    assert registry.workflows() == [w for s in SPECS for w in (s.workflow, *s.extra_workflows)]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_journey_brings_its_policy_section_and_its_events(spec):
    """The program policy and the webhook catalog are assembled from the journeys' own parts:
    the manifest's section is `ProgramPolicy.<name>` and its events are in the catalog, each
    named with the journey's prefix (partner.* for onboarding, certification.* for cert)."""
    assert spec.policy is not None, f"journey {spec.name!r} has no policy section"
    assert ProgramPolicy.model_fields[spec.name].annotation is spec.policy
    assert POLICY_SECTIONS[spec.name] is spec.policy
    assert isinstance(ProgramPolicy().section(spec.policy), spec.policy)
    for name, event in spec.events.items():
        assert name.startswith(spec.events_prefix), f"{name} is not named {spec.events_prefix}*"
        assert events.CATALOG[name] is event


def test_health_events_are_the_journeys_own_and_refresh_a_journey_of_the_partner():
    """A journey's `health_events` are event types of its own catalog, of a journey that has health
    signals; the journeys woken by them (`refresh_signal`) are ones every partner has."""
    for spec in SPECS:
        assert spec.health_events <= set(spec.events), f"{spec.name}: health_events not among its events"
        assert not spec.health_events or spec.health_signals is not None, spec.name
        assert not spec.refresh_signal or spec.with_every_partner is not None, spec.name
    assert registry.HEALTH_EVENTS and registry.REFRESHED == tuple(s for s in SPECS if s.refresh_signal)
    assert "certification.lapsed" in registry.HEALTH_EVENTS and "partner.health_changed" not in registry.HEALTH_EVENTS


def test_the_catalog_is_the_journeys_events_and_the_platforms():
    journey_events = [name for spec in SPECS for name in spec.events]
    assert len(journey_events) == len(set(journey_events))
    assert set(events.CATALOG) == {*journey_events, *events.PLATFORM_EVENTS}
    assert not set(journey_events) & set(events.PLATFORM_EVENTS)
    assert set(POLICY_SECTIONS) == {spec.name for spec in SPECS}  # a section only for an installed journey


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_journey_brings_its_own_part_of_the_workspace(spec):
    """The workspace owns no journey: each journey's web module (its manifest's `web`) registers
    Today items or Partner page sections, and every inline action is registered by the web module
    of the journey it names."""
    from api.web import providers  # noqa: F401  (imports every journey's web module)
    from api.web.actions import ACTIONS
    from api.web.items import PROVIDERS, SECTIONS

    assert spec.web == f"journeys.{spec.name}.web", f"{spec.name}: its manifest names no web module"
    registered = {fn.__module__ for fn in (*PROVIDERS.values(), *SECTIONS.values())}
    assert spec.web in registered, f"{spec.web} registers no Today provider and no Partner page section"
    for (journey, name), registered_action in ACTIONS.items():
        assert registered_action.handler.__module__ == f"journeys.{journey}.web", (journey, name)


def test_every_inline_action_has_its_form_in_its_journey():
    """Each action a journey registers has its form in the journey's own `templates/web/`, and
    its name is unique (the `action` macro finds the form by the name alone)."""
    from api.web import providers  # noqa: F401
    from api.web.actions import ACTIONS, action_form

    names = [name for _, name in ACTIONS]
    assert len(names) == len(set(names)) and names, names
    for (journey, name), registered_action in ACTIONS.items():
        assert (ROOT / "journeys" / journey / "templates" / "web" / f"{name}.html.j2").is_file(), (journey, name)
        assert action_form(name) == f"{journey}/{name}.html.j2"
        assert registered_action.path.startswith("/web/"), registered_action
    assert not (ROOT / "api" / "web" / "templates" / "actions").exists(), "the shell holds no journey's form"


def test_journeys_meet_through_their_contracts_and_manifests():
    """Every journey but QBR gives the QBR scorecard its figures (its manifest's reader of
    (session, query)), and QBR's activities are built with all of them; the journeys others use
    publish a contract module."""
    without = {
        "qbr": "the scorecard's own figures are read by QBR itself",
    }
    for spec in SPECS:
        reader = spec.scorecard_inputs
        if spec.name in without:
            assert reader is None, without[spec.name]
            continue
        assert reader is not None and inspect.iscoroutinefunction(reader), f"{spec.name} gives no scorecard inputs"
        assert list(inspect.signature(reader).parameters) == ["session", "q"], spec.name
    assert registry.SCORECARD_INPUTS == tuple(s.scorecard_inputs for s in SPECS if s.name not in without)
    resources = registry.Resources(
        sessionmaker=None, mailer=None, settings=Settings(_env_file=None, environment="development")
    )  # type: ignore[arg-type]
    owners = {getattr(fn, "__self__", None) for fn in registry.activities(resources)}
    qbr_objects = [o for o in owners if type(o).__name__ == "QbrActivities"]
    assert [o.scorecard_inputs for o in qbr_objects] == [registry.SCORECARD_INPUTS]
    for name in ("onboarding", "deal", "cert", "mdf"):
        published = ROOT / "journeys" / name
        assert (published / "contract.py").is_file() or (published / "contract" / "__init__.py").is_file(), (
            f"journey {name!r} publishes no contract"
        )
    milestone = importlib.import_module("journeys.onboarding.contract").milestone_done("p-1", "first_deal", "system")
    assert milestone[:2] == ("onboarding-p-1", "mark_milestone")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_journey_names_its_router_and_benchmark(spec):
    """The API mounts the router its manifest names, under the journey's own package, and
    `make bench` runs the benchmark it names (a coroutine function of the stack and a size)."""
    module, _, attribute = spec.router.partition(":")
    assert module == f"journeys.{spec.name}.router", f"{spec.name}: its router lives in its own package"
    router = getattr(importlib.import_module(module), attribute)
    assert router.routes, f"{spec.router} has no route"
    module, _, function = spec.bench.partition(":")
    assert module.startswith("bench."), f"{spec.name}: its manifest names no benchmark"
    bench = getattr(importlib.import_module(module), function or "run")
    assert inspect.iscoroutinefunction(bench), spec.bench
    assert len(inspect.signature(bench).parameters) == 2, f"{spec.bench} takes (stack, n)"
    assert spec.bench_policy in ("hours", None)
    from bench.__main__ import BENCHMARKS

    assert spec.name in BENCHMARKS, f"make bench does not run {spec.name}"


def test_the_registry_is_the_one_list_of_journeys():
    """Every package under journeys/ is installed, and nothing else under journeys/ is a journey."""
    packages = sorted(p.name for p in (ROOT / "journeys").iterdir() if (p / "manifest.py").is_file())
    assert sorted(registry.INSTALLED) == packages
    assert [spec.name for spec in SPECS] == list(registry.INSTALLED)


KINDS = {f"{s.name}.{name}": (s, kind) for s in SPECS for name, kind in s.link_kinds.items()}
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _claims(kind: LinkKind) -> Claims:
    """Claims of `kind` for one entity, its scope fields (if any) filled in."""
    values = {kind.claims.ENTITY: "E-1", "decision": "approve", "approver": "cam:1", "jti": "j" * 32}
    values |= {name: 0 for name in kind.claims.SCOPE.values()}
    return kind.claims(**values, expires_at=NOW + timedelta(days=1))


def test_link_kinds_have_distinct_salts_paths_and_their_own_claims():
    """Each kind of one-click link is its journey's: its own salt (never another kind's nor the
    sign-in link's), its own page and a typed claims class naming its entity field."""
    salts = [kind.salt for _, kind in KINDS.values()]
    assert len(salts) == len(set(salts)), "two kinds of link share a salt: one would open as the other"
    assert signin.SALT not in salts
    paths = [kind.path for _, kind in KINDS.values()]
    assert len(paths) == len(set(paths))
    for name, (spec, kind) in KINDS.items():
        assert dataclasses.is_dataclass(kind.claims) and issubclass(kind.claims, Claims), name
        fields = {f.name for f in dataclasses.fields(kind.claims)}
        assert {kind.claims.ENTITY, "decision", "approver", "jti", "expires_at"} <= fields, name
        assert set(kind.claims.SCOPE.values()) <= fields, name
        assert kind.claims is not LinkClaims, f"{name}: a kind types its own claims"
        assert kind.entity is spec.entity, f"{name}: a link decides on the journey's entity"
        assert kind.path.startswith("/") and not kind.path.endswith("/"), name
        assert (spec.directory / "templates" / "links").is_dir(), f"{name}: no link pages (templates/links)"
        router = importlib.import_module(spec.router.partition(":")[0])
        routes = {(r.path, m) for r in router.router.routes for m in getattr(r, "methods", ())}
        assert {(f"{kind.path}/{{token}}", "GET"), (f"{kind.path}/{{token}}", "POST")} <= routes, name


@pytest.mark.parametrize("made", sorted(KINDS))
def test_a_link_opens_as_its_own_kind_only(made):
    _, kind = KINDS[made]
    claims = _claims(kind)
    token = make_token(SECRET, claims, salt=kind.salt)
    assert kind.url("https://x.test", SECRET, claims) == f"https://x.test{kind.path}/{token}"
    assert read_token(SECRET, token, now=NOW, salt=kind.salt, kind=kind.claims) == claims
    assert read_token(SECRET, token, now=NOW, salt=kind.salt, kind=kind.claims).entity_id == "E-1"
    for other, (_, read_as) in KINDS.items():
        if other != made:
            with pytest.raises(LinkInvalid):
                read_token(SECRET, token, now=NOW, salt=read_as.salt, kind=read_as.claims)


def test_links_already_sent_keep_working():
    """The links in emails already sent were signed with these salts and name their entity in
    the same token field: a kind keeps its salt, and the untyped view reads the same entity."""
    assert KINDS["deal.decision"][1].salt == links.SALT
    assert KINDS["mdf.decision"][1].salt == links.MDF_SALT
    for _, kind in KINDS.values():
        claims = _claims(kind)
        untyped = read_token(SECRET, make_token(SECRET, claims, salt=kind.salt), now=NOW, salt=kind.salt)
        assert untyped.deal_id == claims.entity_id and untyped.jti == claims.jti
        again = make_token(SECRET, untyped, salt=kind.salt)
        assert read_token(SECRET, again, now=NOW, salt=kind.salt, kind=kind.claims) == claims


def test_grants_are_declared_by_their_journey_and_set_through_their_api_field():
    """A key permission is its journey's (e.g. MDF's approval level), named `<journey>.<name>`,
    and each is set by a field of `POST /api-keys` of its own."""
    grants = registry.grants()
    assert "mdf.approver_level" in grants
    assert set(grants) == {f"{s.name}.{n}" for s in SPECS for n in s.grants}
    fields = [g.api_field for g in grants.values()]
    assert len(fields) == len(set(fields))
    for name, grant in grants.items():
        assert grant.api_field in ApiKeyCreate.model_fields, name
        assert grant.description and grant.label and grant.roles, name
    principal = Principal(
        key_id=uuid.uuid4(), role=Role.ops, cam_id=None, partner_id=None, grants={"mdf.approver_level": 2}
    )
    assert principal.grant("mdf.approver_level") == 2 and principal.grant("qbr.nothing") is None
    legacy = Principal(key_id=uuid.uuid4(), role=Role.ops, cam_id=None, partner_id=None, approver_level=3)
    assert legacy.grant("mdf.approver_level") == 3
