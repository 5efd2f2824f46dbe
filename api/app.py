"""The FastAPI application. One Temporal client and one session factory per process,
created in the lifespan."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.routers import cams, cert, deal, health, keys, onboarding, partners, policy
from core.settings import Settings, get_settings
from store.db import make_engine, make_sessionmaker
from worker.main import connect


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.temporal = await connect(settings)
        yield
        await engine.dispose()

    app = FastAPI(
        title="CAM Lights",
        version="0.1.0",
        description="Partner relationship management on Temporal. Every endpoint but /health needs "
                    "`Authorization: Bearer <api key>`.",
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (health, cams, partners, onboarding, deal, cert, policy, keys):
        app.include_router(module.router)
    return app
