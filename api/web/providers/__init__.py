"""Today's item providers, one module per journey kind (each registers itself with
`api.web.items.provider`). Every module of this package is imported here."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
