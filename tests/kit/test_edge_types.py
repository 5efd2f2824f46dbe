"""The edge types from outside, through the real API: what each class of unbounded input did
before it went through a bounded type (the security review's quadratic date pattern, the
bounded-by-construction issue's dates, periods, booleans and unscreened link text)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.limits import MAX_BODY_BYTES
from domain.enums import Role
from journeys.deal.models import Deal
from journeys.mdf.models import MdfFund, MdfRequest
from store.models import UsedLink
from tests.helpers.api import approve_link, deal_body, enrol, new_key
from tests.helpers.waiting import eventually
from tests.mdf.test_api import body as mdf_body
from tests.mdf.test_api import fast, setup


async def count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


def refused(r, field: str) -> None:
    assert r.status_code == 422, r.text[:500]
    assert field in r.json()["detail"], r.text[:500]


async def test_a_megabyte_of_digits_as_a_date_is_refused_at_once(api, ops, sessionmaker):
    """`expected_close_date` of 1 MiB of digits: the number pattern backtracked quadratically on
    it (hours of CPU in the event loop, the whole API stopped); now the length is bounded first."""
    partner = await enrol(api, ops, tier="registered", domain="digits.test")
    body = {**deal_body(), "partner_id": partner["id"], "expected_close_date": ""}
    room = MAX_BODY_BYTES - len(json.dumps(body)) - 16  # the largest body the API reads
    body["expected_close_date"] = "1" * room
    content = json.dumps(body)
    assert len(content) <= MAX_BODY_BYTES and room > 1_000_000
    started = time.monotonic()
    r = await api.post("/deals", content=content, headers={**ops, "Content-Type": "application/json"})
    took = time.monotonic() - started
    refused(r, "expected_close_date")
    assert "at most 40 characters" in r.json()["detail"]
    assert took < 2.0, f"{took:.2f} s"
    assert await count(sessionmaker, Deal) == 0


@pytest.mark.parametrize("day", ["9999-12-31", "1999-12-31", "2100-01-01"])
async def test_dates_outside_the_horizon_are_refused(api, ops, sessionmaker, day):
    partner = await enrol(api, ops, tier="registered", domain="horizon.test")
    r = await api.post("/deals", json={**deal_body(expected_close_date=day), "partner_id": partner["id"]}, headers=ops)
    refused(r, "expected_close_date")
    assert "between 2000-01-01 and 2099-12-31" in r.json()["detail"]
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    r = await api.post("/mdf/requests", json=mdf_body(planned_end=day), headers=partner_h)
    refused(r, "planned_end")  # an activity ending 9999-12-31 wedged its journey (date overflow)
    start = datetime.now(UTC) + timedelta(days=1)
    r = await api.post(
        f"/partners/{partner['id']}/qbr/{start.year}-Q{(start.month - 1) // 3 + 1}/meeting",
        json={"starts_at": f"{day}T10:00:00Z"},
        headers=ops,
    )
    refused(r, "starts_at")  # a meeting in year 9999 wedged the QBR (and its tier review)
    assert await count(sessionmaker, Deal) == 0 and await count(sessionmaker, MdfRequest) == 0


async def test_a_fund_opens_at_most_a_year_ahead(api, ops, worker, sessionmaker):
    await fast(api, ops)
    _, partner, partner_h, _ = await setup(api, ops, sessionmaker)
    for period in ("2099-Q4", "2999-Q1"):
        r = await api.post("/mdf/requests", json=mdf_body(period=period), headers=partner_h)
        refused(r, "period")
        r = await api.post(
            f"/partners/{partner['id']}/funds/allocations",
            json={"period": period, "amount_minor": 100, "reason": "far ahead"},
            headers=ops,
        )
        refused(r, "period")
    assert await count(sessionmaker, MdfRequest) == 0
    async with sessionmaker() as session:
        periods = (await session.scalars(select(MdfFund.period))).all()
    assert not [p for p in periods if p.startswith(("2099", "2999"))]


@pytest.mark.parametrize("amount", [False, True, "5", 5.5])
async def test_a_boolean_or_a_string_is_not_an_integer(api, ops, sessionmaker, amount):
    partner = await enrol(api, ops, tier="registered", domain="strict.test")
    r = await api.put(f"/partners/{partner['id']}/targets/2026-Q1", json={"amount_minor": amount}, headers=ops)
    refused(r, "amount_minor")
    r = await api.post("/api-keys", json={"role": "ops", "approver_level": True}, headers=ops)
    refused(r, "approver_level")
    r = await api.put(f"/partners/{partner['id']}/targets/2026-Q1", json={"amount_minor": 5}, headers=ops)
    assert r.status_code == 200 and r.json()["amount_minor"] == 5, r.text


async def test_a_nul_in_an_mdf_link_reason_is_refused_and_the_link_stays_usable(
    api, ops, worker, sessionmaker, mailbox
):
    """The deal link screened its reason, the MDF link passed a NUL on: "it will apply", the
    journey went to needs_attention and the link was used up. Both take the same edge type now."""
    await fast(api, ops)
    cam, _, partner_h, _ = await setup(api, ops, sessionmaker)
    r = await api.post("/mdf/requests", json=mdf_body(amount_minor=80_000), headers=partner_h)
    assert r.status_code == 201, r.text
    req = r.json()

    url = await eventually(
        lambda: approve_link(mailbox, "request_approval_request", cam["email"]),
        what="the approval email with its links",
    )
    for bad in ("ok\x00", "ok\x1b[2J"):
        r = await api.post(url, data={"reason": bad})
        refused(r, "reason")
    assert await count(sessionmaker, UsedLink) == 0
    got = (await api.get(f"/mdf/requests/{req['id']}", headers=partner_h)).json()
    assert got["state"] == "pending_approval", got
    done = await api.post(url, data={"reason": "looks good\r\nsee you there"})  # a textarea's CRLF is a line break
    assert done.status_code == 200 and "approved" in done.text, done.text
