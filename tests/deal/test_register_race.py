"""A registration's conflict read goes with the statement that takes its locks, so its snapshot
can be older than the locks when it had to wait for them (journeys/deal/service.py `register`).
The write sends the read again, after the locks; when another registration of the customer
committed meanwhile, the registration decides again instead of committing on the stale read.
Forced here: the locks held by another transaction, which registers the customer and commits
while the request waits for them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy import text

from domain.enums import Role
from journeys.deal.domain import DealState, normalize_company_name
from journeys.deal.models import Deal
from store import locks
from tests.helpers.api import deal_body, enrol, new_key
from tests.helpers.statements import statements

READ = "SELECT partners.id"  # the registration's read, which takes its locks


async def waiting_for_a_lock(sessionmaker, request: asyncio.Future, seconds: float = 10) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if request.done():
            raise AssertionError(f"the registration was answered without waiting for its locks: {request.result()}")
        async with sessionmaker() as s:
            waiting = await s.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the registration never waited for its locks")


async def held_and_registered(
    sessionmaker, partner_id: str, body: dict, send: Callable[[], Awaitable[Any]]
) -> tuple[uuid.UUID, asyncio.Future]:
    """In one transaction: take the registration's locks, then send the request (`send`: it
    would otherwise race the locks, and a registration that took them first never waits),
    write another partner's open registration of the customer, wait until the request waits
    for the locks, commit. Returns the deal written and the request."""
    names = (
        f"deal:domain:{body['customer_domain']}:{body['product_category']}",
        f"deal:name:{normalize_company_name(body['customer_name'])}:{body['product_category']}",
    )
    deal_id = uuid.uuid4()
    async with sessionmaker() as s:
        await locks.lock(s, *names)
        request = asyncio.ensure_future(send())
        s.add(
            Deal(
                id=deal_id,
                partner_id=uuid.UUID(partner_id),
                customer_name=body["customer_name"],
                customer_domain=body["customer_domain"],
                customer_key=body["customer_domain"],
                customer_name_key=normalize_company_name(body["customer_name"]),
                product_category=body["product_category"],
                amount_minor=100_00,
                currency="USD",
                expected_close_date=date(2027, 3, 31),
                stage="qualification",
                state=DealState.pending_approval.value,
                extensions_used=0,
                created_by="test:race",
            )
        )
        await s.flush()
        await waiting_for_a_lock(sessionmaker, request)
        assert not request.done()
        await s.commit()
    return deal_id, request


async def test_a_registration_committed_while_one_waits_for_its_locks_is_seen(api, ops, sessionmaker):
    first = await enrol(api, ops, tier="registered", domain="first-race.test", name="First Partner")
    second = await enrol(api, ops, tier="registered", domain="second-race.test", name="Second Partner")
    key = await new_key(sessionmaker, Role.partner, partner_id=second["id"])
    body = deal_body(customer_domain="race.test", customer_name="Race Corp")
    with statements() as sent:
        other, request = await held_and_registered(
            sessionmaker, first["id"], body, lambda: api.post("/deals", json=body, headers=key)
        )
        r = await request
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "conflict_review" and r.json()["conflict_with"] == str(other)
    assert sum(s.startswith(READ) for s in sent) == 2  # decided on a stale read, then again


async def test_the_same_partner_committing_meanwhile_is_refused(api, ops, sessionmaker):
    partner = await enrol(api, ops, tier="registered", domain="own-race.test", name="Own Partner")
    key = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    body = deal_body(customer_domain="own-race-customer.test", customer_name="Own Race Corp")
    other, request = await held_and_registered(
        sessionmaker, partner["id"], body, lambda: api.post("/deals", json=body, headers=key)
    )
    r = await request
    assert r.status_code == 409 and str(other) in r.json()["detail"], r.text
    async with sessionmaker() as s:  # nothing of the refused registration was written
        count = await s.scalar(text("SELECT count(*) FROM deals WHERE customer_key = 'own-race-customer.test'"))
    assert count == 1


async def test_a_registration_overtaken_at_every_attempt_is_refused_and_writes_nothing(
    api, ops, sessionmaker, monkeypatch
):
    from journeys.deal import service

    monkeypatch.setattr(service, "REGISTER_ATTEMPTS", 1)  # one attempt, overtaken once
    first = await enrol(api, ops, tier="registered", domain="first-busy.test", name="First Busy")
    second = await enrol(api, ops, tier="registered", domain="second-busy.test", name="Second Busy")
    key = await new_key(sessionmaker, Role.partner, partner_id=second["id"])
    body = deal_body(customer_domain="busy.test", customer_name="Busy Corp")
    _, request = await held_and_registered(
        sessionmaker, first["id"], body, lambda: api.post("/deals", json=body, headers=key)
    )
    r = await request
    assert r.status_code == 409 and "kept arriving at the same moment" in r.json()["detail"], r.text
    async with sessionmaker() as s:
        count = await s.scalar(text("SELECT count(*) FROM deals WHERE customer_key = 'busy.test'"))
        records = await s.scalar(
            text("SELECT count(*) FROM journeys WHERE journey = 'deal' AND partner_id = :p"), {"p": second["id"]}
        )
    assert (count, records) == (1, 0)  # only the other partner's
