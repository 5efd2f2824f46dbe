"""The CAM workspace: server-rendered pages for CAMs and ops in the API process (`/web`).
`install(app)` adds its routers, its static files, its security headers and its sign-in
rate limits to the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web.pages import HERE
from api.web.security import PREFIX, SecurityHeaders


def install(app: FastAPI, *, failures_per_minute: int) -> None:
    from api.web import (
        actions,
        effectiveness,
        providers,  # noqa: F401  (every journey's web module: registers its actions too)
        router,
        signin,
        simulations,
    )

    app.state.web_sign_in_limiters = signin.Limiters(failures_per_minute)
    app.include_router(signin.router)
    app.include_router(router.router)
    app.include_router(simulations.router)
    app.include_router(effectiveness.router)
    app.include_router(actions.router)  # the journeys' own actions and pages (registered by providers)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="web-static")
    app.add_middleware(SecurityHeaders)
