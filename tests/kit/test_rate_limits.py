"""Brute force is slowed down per client, with one budget shared by every API process: bad API keys
and bad decision links count as failures, and past the limit a failed attempt gets 429 with
Retry-After from any process; other clients do not. Only failures are limited: a valid key or a
genuine link is answered normally whatever its client's count (behind an ingress every client may
share one address), and X-Forwarded-For names the client only when a trusted proxy sends it."""

from __future__ import annotations

import contextlib
import math
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import select

from api.app import create_app
from domain.links import LinkClaims, make_token
from store.models.limits import RateLimit

LIMIT = 5


@contextlib.asynccontextmanager
async def two_apps(settings, **changes):
    """Two API processes (two apps, each with its own engine and pool) against one database."""
    apps = [
        create_app(settings.model_copy(update={"auth_failures_per_minute": LIMIT, **changes}), reconcile_every=None)
        for _ in range(2)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield apps


def client(app, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://t")


@pytest_asyncio.fixture
async def clients(settings, sessionmaker):
    """An attacker whose requests alternate between two API processes, and another client."""
    async with two_apps(settings) as (a, b):
        made = [client(a, "203.0.113.7"), client(b, "203.0.113.7"), client(a, "198.51.100.9")]
        yield made
        for c in made:
            await c.aclose()


async def test_bad_api_keys_are_limited_per_client_across_api_processes(clients, ops):
    on_a, on_b, other = clients
    for i in range(LIMIT):  # spread over both processes: one budget
        r = await (on_a, on_b)[i % 2].get("/partners", headers={"Authorization": f"Bearer cl_guess{i}"})
        assert r.status_code == 401, r.text
    for attacker in (on_a, on_b):  # either process now answers 429 to a failure, with the time left
        r = await attacker.get("/partners", headers={"Authorization": "Bearer cl_guess-more"})
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
        assert "too many failed authentications" in r.json()["detail"]
    for attacker in (on_a, on_b):  # a valid key from the same address is never refused
        assert (await attacker.get("/partners", headers=ops)).status_code == 200
    r = await other.get("/partners", headers={"Authorization": "Bearer cl_guess-other"})
    assert r.status_code == 401  # another client has its own budget
    assert (await on_a.get("/health")).status_code == 200  # no key, no limit


async def test_retry_after_is_the_time_left_in_the_window(clients, sessionmaker):
    on_a, on_b, _ = clients
    for i in range(LIMIT + 1):
        await on_a.get("/partners", headers={"Authorization": f"Bearer cl_guess{i}"})
    async with sessionmaker() as session:  # the window began 45 s ago: 15 s are left
        row = await session.scalar(select(RateLimit).where(RateLimit.key == "auth:203.0.113.7"))
        began = datetime.now(UTC)
        row.window_start = began - timedelta(seconds=45)
        await session.commit()
    r = await on_b.get("/partners", headers={"Authorization": "Bearer cl_guess-x"})
    slow = math.ceil((datetime.now(UTC) - began).total_seconds())  # a loaded machine takes its time
    assert r.status_code == 429 and 14 - slow <= int(r.headers["Retry-After"]) <= 16, r.headers
    async with sessionmaker() as session:  # the window is over: a new one begins with this failure
        row = await session.scalar(select(RateLimit).where(RateLimit.key == "auth:203.0.113.7"))
        row.window_start = datetime.now(UTC) - timedelta(seconds=61)
        await session.commit()
    assert (await on_a.get("/partners", headers={"Authorization": "Bearer cl_guess-y"})).status_code == 401


async def test_forged_decision_links_are_limited_per_client_but_genuine_ones_are_answered(clients, settings):
    on_a, on_b, other = clients
    for i in range(LIMIT):
        r = await (on_a, on_b)[i % 2].get(f"/deals/links/forged-token-{i}")
        assert r.status_code == 403
    r = await on_b.post("/deals/links/forged-token-x", data={"reason": ""})
    assert r.status_code == 429 and "too many failed link attempts" in r.text and int(r.headers["Retry-After"]) > 0
    assert (await other.get("/deals/links/forged-token-y")).status_code == 403
    claims = LinkClaims(
        deal_id=str(uuid.uuid4()),
        decision="approve",
        approver="ops:x",
        jti=uuid.uuid4().hex,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    r = await on_a.get(f"/deals/links/{make_token(settings.link_secret, claims)}")
    assert r.status_code == 404 and "does not exist" in r.text  # read and answered, not refused with 429


async def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy(settings, sessionmaker, ops):
    async with two_apps(settings, trusted_proxies=["10.0.0.0/8"]) as (a, b):
        ingress_a, ingress_b, outsider = client(a, "10.1.2.3"), client(b, "10.9.8.7"), client(a, "192.0.2.50")

        def bad(forwarded: str) -> dict[str, str]:
            return {"Authorization": "Bearer cl_guess", "X-Forwarded-For": forwarded}

        for i in range(LIMIT):  # one client behind the ingress (via both processes) spends its budget
            r = await (ingress_a, ingress_b)[i % 2].get("/partners", headers=bad("203.0.113.7, 10.4.4.4"))
            assert r.status_code == 401
        assert (await ingress_b.get("/partners", headers=bad("203.0.113.7"))).status_code == 429
        # ... another client behind the same ingress is not affected, nor a valid key of the first
        assert (await ingress_a.get("/partners", headers=bad("198.51.100.9"))).status_code == 401
        r = await ingress_a.get("/partners", headers={**ops, "X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 200
        # A client that is not a trusted proxy cannot pick its address: its own peer address counts.
        for i in range(LIMIT):
            r = await outsider.get("/partners", headers=bad(f"198.51.100.{i}"))
            assert r.status_code == 401
        assert (await outsider.get("/partners", headers=bad("198.51.100.99"))).status_code == 429
        for c in (ingress_a, ingress_b, outsider):
            await c.aclose()


async def test_a_partner_keys_updates_to_its_journeys_share_one_budget_per_key(settings, sessionmaker, ops, worker):
    """Updates a partner key sends to its own journeys (milestone reports, deal stages, QBR meetings,
    MDF dates) share one budget per key and minute across API processes: up to the limit they are
    answered as ever, past it 429 with Retry-After; other keys, and staff, keep their own."""
    from domain.enums import Role
    from tests.helpers.api import enrol, new_key

    async with two_apps(settings, partner_updates_per_minute=LIMIT) as (a, b):
        on_a, on_b = client(a, "203.0.113.7"), client(b, "203.0.113.8")
        partner = await enrol(on_a, ops, tier="registered", domain="budget.test")
        own = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
        second = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
        report = f"/partners/{partner['id']}/onboarding/milestones/portal_access"
        for i in range(LIMIT):  # at the bar: every one answered, whichever process takes it
            r = await (on_a, on_b)[i % 2].post(report, headers=own)
            assert r.status_code == 200, r.text
        today = datetime.now(UTC).date()
        over = [
            ("post", report, None),
            ("post", f"/deals/{uuid.uuid4()}/stage", {"stage": "proposal"}),
            (
                "post",
                f"/mdf/requests/{uuid.uuid4()}/dates",
                {"planned_start": str(today + timedelta(days=5)), "planned_end": str(today + timedelta(days=6))},
            ),
            (
                "post",
                f"/partners/{partner['id']}/qbr/2027-Q1/meeting",
                {"starts_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
            ),
        ]
        for method, path, body in over:  # past it: each kind of update, from either process
            for http in (on_a, on_b):
                r = await http.request(method, path, json=body, headers=own)
                assert r.status_code == 429, (path, r.text)
                assert 1 <= int(r.headers["Retry-After"]) <= 60 and "too many journey updates" in r.json()["detail"]
        assert (await on_a.post(report, headers=second)).status_code == 200  # another key: its own budget
        assert (await on_b.post(report, headers=ops)).status_code == 200  # staff are not budgeted
        assert (await on_a.get(f"/partners/{partner['id']}", headers=own)).status_code == 200  # reads are not
        for http in (on_a, on_b):
            await http.aclose()
