"""An API process whose database connections are all taken (more requests in flight than its
pool holds, for longer than the pool's timeout) answers 503 with Retry-After, never a 500."""

from __future__ import annotations

import httpx

from api.app import create_app
from store.db import make_engine, make_sessionmaker


async def test_no_database_connection_free_in_time_answers_503(settings, ops):
    app = create_app(settings, reconcile_every=None)
    async with app.router.lifespan_context(app):
        engine = make_engine(settings.database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
        app.state.sessionmaker = make_sessionmaker(engine)
        transport = httpx.ASGITransport(app=app)
        try:
            async with (
                engine.connect(),  # the pool's one connection, taken
                httpx.AsyncClient(transport=transport, base_url="http://camlights.test") as client,
            ):
                r = await client.get("/partners", headers=ops)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5" and "overloaded" in r.json()["detail"]
            async with httpx.AsyncClient(transport=transport, base_url="http://camlights.test") as client:
                assert (await client.get("/partners", headers=ops)).status_code == 200  # free again: served
        finally:
            await engine.dispose()
