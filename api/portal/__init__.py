"""The partner portal: server-rendered pages for partners' own people in the API process
(`/portal`), built like the CAM workspace (api/web/) and on the journeys' manifests: each journey's
portal module (its manifest's `portal`) brings its home items, task pages and actions.
`install(app)` adds its routers and its security headers to the FastAPI app (the sign-in rate
limits are the workspace's, shared)."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from api.portal.security import PREFIX, uploader
from api.web.security import SecurityHeaders
from core import registry

__all__ = ["install", "uploader"]


def install(app: FastAPI) -> None:
    from api.portal import items, router, signin, team  # noqa: F401  (router registers its pages on items.router)

    for spec in registry.JOURNEYS:  # each journey's own portal module, named by its manifest
        if spec.portal:
            importlib.import_module(spec.portal)
    app.include_router(team.router)  # the JSON API: /partners/{id}/users
    app.include_router(signin.router)
    app.include_router(items.router)
    app.add_middleware(SecurityHeaders, prefixes=(PREFIX,))
