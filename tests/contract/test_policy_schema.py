"""The program policy and the event catalog are assembled from the installed journeys' parts
(journeys/<name>/policy.py and events.py): `PUT /policy` / `GET /policy` keep the OpenAPI schema
they had when the platform listed every section by hand, and webhook subscribers keep the same
event types, in the same order, with the same payloads (tests/contract/policy_schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from core.settings import Settings
from domain import events

pytestmark = pytest.mark.unit

PINNED = json.loads((Path(__file__).parent / "policy_schema.json").read_text())


def _reachable(schemas: dict[str, Any], names: set[str]) -> set[str]:
    """The components these reference, transitively (themselves included)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and (name := ref.rsplit("/", 1)[1]) not in found:
                found.add(name)
                walk(schemas[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk([{"$ref": f"#/components/schemas/{name}"} for name in names])
    return found


def test_the_policy_schema_is_the_one_of_the_listed_sections():
    schema = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None).openapi()
    schemas = schema["components"]["schemas"]
    names = _reachable(schemas, {"ProgramPolicy", "VersionedPolicy"})
    assert sorted(names) == sorted(PINNED["components"]), "the policy's component names changed"
    assert {name: schemas[name] for name in names} == PINNED["components"]
    assert schema["paths"]["/policy"] == PINNED["put_policy"]


def test_the_catalog_lists_the_same_events_in_the_same_order():
    catalog = [
        [name, s.version, s.data.__name__, s.description, s.data.model_json_schema()]
        for name, s in events.CATALOG.items()
    ]
    assert catalog == PINNED["catalog"]
