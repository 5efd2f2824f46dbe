"""The installed journeys, by name, in install order: the one list. core/registry.py installs
their manifests; the program policy (domain/policy.py) and the event catalog (domain/events.py)
are assembled from their pure parts, `journeys/<name>/policy.py` and `journeys/<name>/events.py`,
imported here by name as the registry imports the manifests (so the platform names no journey)."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

INSTALLED = (
    "onboarding",
    "deal",
    "cert",
    "mdf",
    "qbr",
    "leads",
    "health",
)


def parts(part: str) -> list[tuple[str, ModuleType]]:
    """Each installed journey's module `journeys/<name>/<part>.py`, where it has one."""
    found = []
    for name in INSTALLED:
        module = f"journeys.{name}.{part}"
        if importlib.util.find_spec(module) is None:
            continue
        found.append((name, importlib.import_module(module)))
    return found
