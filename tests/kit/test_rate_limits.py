"""Brute force is slowed down per client: bad API keys and bad decision links count as failures,
and past the limit a client gets 429 with Retry-After, whatever it sends; other clients do not."""

from __future__ import annotations

import httpx
import pytest_asyncio

from api.app import create_app

LIMIT = 5


@pytest_asyncio.fixture
async def clients(settings, sessionmaker):
    """Two clients (two addresses) of one app whose limit is LIMIT failures a minute."""
    app = create_app(settings.model_copy(update={"auth_failures_per_minute": LIMIT}), reconcile_every=None)
    async with app.router.lifespan_context(app):
        made = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://t")
            for host in ("203.0.113.7", "198.51.100.9")
        ]
        yield made
        for c in made:
            await c.aclose()


async def test_bad_api_keys_are_limited_per_client(clients, ops):
    attacker, other = clients
    for i in range(LIMIT):
        r = await attacker.get("/partners", headers={"Authorization": f"Bearer cl_guess{i}"})
        assert r.status_code == 401, r.text
    r = await attacker.get("/partners", headers=ops)  # even a valid key, from this client, now waits
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "too many failed authentications" in r.json()["detail"]
    assert (await other.get("/partners", headers=ops)).status_code == 200  # another client is unaffected
    assert (await attacker.get("/health")).status_code == 200  # no key, no limit


async def test_forged_decision_links_are_limited_per_client(clients):
    attacker, other = clients
    for i in range(LIMIT):
        r = await attacker.get(f"/deals/links/forged-token-{i}")
        assert r.status_code == 403
    r = await attacker.post("/deals/links/forged-token-x", data={"reason": ""})
    assert r.status_code == 429 and "too many failed link attempts" in r.text
    assert (await other.get("/deals/links/forged-token-y")).status_code == 403
