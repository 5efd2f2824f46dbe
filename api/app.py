"""The FastAPI application. One Temporal client and one session factory per process, created in
the lifespan; the routers of every journey in the registry (`api/<journey>/router.py`), the
partners and the program-level routers; the reconciler that starts journeys whose start was
never confirmed."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, journeys, keycache, limits, metrics, openapi, portal, ratelimit, web
from api.partners import router as partners
from api.routers import cams, codec, crm, effectiveness, health, keys, ops, policy, simulations, webhooks
from core import registry
from core.codec import EncryptionCodec
from core.memory import freeze_startup_objects
from core.observability import configure_tracing
from core.settings import Settings, get_settings
from core.temporal import connect
from store import apikeys
from store.db import make_engine, make_sessionmaker


def create_app(settings: Settings | None = None, *, reconcile_every: float | None = 10.0) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_tracing(settings, "camlights-api")
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.temporal = await connect(settings)
        ring = settings.key_ring()
        app.state.codec = EncryptionCodec(ring) if ring else None  # for /codec: the ring is parsed once
        # Failure limits shared by every API process (api/ratelimit.py): one statement each, autocommitted.
        app.state.limits_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        app.state.trusted_proxies = ratelimit.networks(settings.trusted_proxies)
        app.state.auth_limiter = ratelimit.FailureLimiter("auth", settings.auth_failures_per_minute)
        app.state.link_limiter = ratelimit.FailureLimiter("link", settings.auth_failures_per_minute)
        app.state.update_limiter = ratelimit.FailureLimiter("updates", settings.partner_updates_per_minute)
        # The keys this process looked up, kept while it hears of every change (api/keycache.py).
        app.state.key_cache = keycache.KeyCache()
        apikeys.watch_key_changes(keycache.drop_everywhere)
        key_listener = None
        if settings.key_changes_url != "off":
            listen_to = settings.key_changes_url or settings.database_url
            key_listener = asyncio.create_task(app.state.key_cache.listen(listen_to))
            await app.state.key_cache.wait_listening(keycache.START_WAIT)
        freeze_startup_objects()  # the app and every module its routes run are imported by now
        reconciler = None
        if reconcile_every:
            reconciler = asyncio.create_task(
                journeys.run_reconciler(app.state.sessionmaker, app.state.temporal, reconcile_every)
            )
        yield
        await simulations.stop_all()
        if reconciler is not None:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        if key_listener is not None:
            key_listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await key_listener
        await engine.dispose()

    app = FastAPI(
        title="CAM Lights",
        version="0.2.0",
        description="Partner relationship management on Temporal. Every endpoint but /health needs "
        '`Authorization: Bearer <api key>`. Every error is JSON: `{"detail": "<what was wrong>"}`, '
        f"and for 422 an `errors` list naming each field. Request bodies are limited to {limits.MAX_BODY_BYTES} "
        "bytes (413).",
        lifespan=lifespan,
    )
    app.add_middleware(
        limits.BodyLimit,
        max_bytes=limits.MAX_BODY_BYTES,
        body_seconds=settings.body_read_seconds,
        upload_seconds=settings.upload_read_seconds,
        uploads_per_key=settings.uploads_per_key,
        signed_in_user=portal.uploader,
    )
    errors.install(app)  # its catch-all middleware goes outside the body limit
    app.add_middleware(metrics.Observe)  # outermost: a span and a latency sample for every request
    for module in (health, cams, effectiveness, partners, policy, simulations, keys, ops, codec):
        app.include_router(module.router)
    for module in (webhooks, crm, metrics):  # integrations and operations
        app.include_router(module.router)
    app.include_router(webhooks.catalog_router)
    for spec in registry.JOURNEYS:  # each journey's router, named by its manifest
        router_module, _, attribute = spec.router.partition(":")
        app.include_router(getattr(importlib.import_module(router_module), attribute))
    web.install(app, failures_per_minute=settings.auth_failures_per_minute)  # the CAM workspace (/web)
    portal.install(app)  # the partner portal (/portal) and its team API
    openapi.install(app)
    return app
