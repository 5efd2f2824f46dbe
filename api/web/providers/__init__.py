"""Today's item providers, one module per journey kind (each registers itself with
`api.web.items.provider`). Every module of this package is imported here."""

from __future__ import annotations

import importlib
import pkgutil

from core import registry

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
for _spec in registry.JOURNEYS:  # each journey's own workspace module, named by its manifest
    if _spec.web:
        importlib.import_module(_spec.web)
