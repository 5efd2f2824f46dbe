"""The journey registry and the shape every journey shares: a journey registered in
core/registry.py has its files by the same names in the same places, its policy section, its
messages and its journey-scoped activity names. Adding a journey that misses one fails here."""

from __future__ import annotations

import dataclasses
import importlib
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
from domain import journeys as shared
from domain import links, signin
from domain.enums import Role
from domain.links import Claims, LinkClaims, LinkInvalid, make_token, read_token
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
