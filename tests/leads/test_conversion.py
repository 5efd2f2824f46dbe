"""Conversion by the same customer and the attribution of won revenue: a deal the partner holding
an accepted lead registers for the lead's customer (without naming the lead) is credited to it
(through the leads contract, called by the deal service); `lead.converted` fires once; when that
deal closes won (a CRM event), `GET /leads/attribution` credits its revenue to the lead's source."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from store.models.integrations import WebhookEvent
from tests.helpers.api import deal_body
from tests.helpers.waiting import eventually
from tests.leads.test_api import lead_body, partner_and_bystander


async def _field(api, ops, path, field, value) -> bool:
    return (await api.get(path, headers=ops)).json()[field] == value


async def test_a_deal_for_the_customer_converts_the_lead_and_its_won_revenue_is_attributed(
    api, ops, worker, sessionmaker
):
    partner, partner_h, _, other_h = await partner_and_bystander(
        api, ops, sessionmaker, ("convert.test", "bystander.test")
    )
    lead = (await api.post("/leads", json=lead_body(), headers=ops)).json()
    website = lead_body(domain="hooli.test", company="Hooli", source="website")
    unanswered = (await api.post("/leads", json=website, headers=ops)).json()
    await eventually(lambda: _field(api, ops, f"/leads/{lead['id']}", "state", "offered"), what="offered")
    r = await api.post(f"/leads/{lead['id']}/accept", headers=partner_h)
    assert r.status_code == 200, r.text

    another = await api.post("/deals", json=deal_body(amount="900.00"), headers=partner_h)  # another customer
    assert another.status_code == 201, another.text
    deal = await api.post(
        "/deals",
        json=deal_body(customer_name="Initech", customer_domain="initech.test", amount="1000.00"),
        headers=partner_h,
    )
    assert deal.status_code == 201, deal.text
    deal_id = deal.json()["id"]
    await eventually(lambda: _field(api, ops, f"/leads/{lead['id']}", "state", "converted"), what="converted")
    got = (await api.get(f"/leads/{lead['id']}", headers=partner_h)).json()
    assert got["deal_id"] == deal_id and got["partner_id"] == partner["id"]
    r = await api.post(f"/leads/{lead['id']}/deal", json={"deal_id": another.json()["id"]}, headers=partner_h)
    assert r.status_code == 409, r.text  # converted once: naming another deal changes nothing

    await eventually(lambda: _field(api, ops, f"/deals/{deal_id}", "state", "approved"), what="auto approval")
    won = {"event_id": "won-1", "type": "opportunity.closed_won", "deal_id": deal_id}
    assert (await api.post("/events/crm", json=won, headers=ops)).status_code == 202
    await eventually(lambda: _field(api, ops, f"/deals/{deal_id}", "state", "won"), what="the deal won")
    r = await api.get("/leads/attribution", headers=ops)
    assert r.status_code == 200, r.text
    assert r.json() == [
        {
            "source": "webinar-2026",
            "leads": 1,
            "accepted": 1,
            "converted": 1,
            "won": 1,
            "won_minor": {"USD": 100000},
            "acceptance_rate": 1.0,
            "conversion_rate": 1.0,
        },
        {
            "source": "website",
            "leads": 1,
            "accepted": 0,
            "converted": 0,
            "won": 0,
            "won_minor": {},
            "acceptance_rate": 0.0,
            "conversion_rate": None,
        },
    ]
    assert [row["source"] for row in (await api.get("/leads/attribution", headers=other_h)).json()] == []
    assert (await api.get(f"/leads/{unanswered['id']}", headers=ops)).json()["state"] == "offered"
    async with sessionmaker() as session:
        converted = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.type == "lead.converted")
        )
    assert converted == 1


async def test_a_deal_naming_an_accepted_lead_converts_it_and_other_leads_are_refused(api, ops, worker, sessionmaker):
    """`lead_id` on `POST /deals`: an unknown or another partner's lead is a 422 naming the field, a
    lead the partner has not accepted a 409 naming its state, and neither writes a deal; the lead
    it accepted is credited with the deal whatever the customer (converted once)."""
    partner, partner_h, _, other_h = await partner_and_bystander(
        api, ops, sessionmaker, ("named.test", "named-bystander.test")
    )
    lead = (await api.post("/leads", json=lead_body(domain="named-lead.test"), headers=ops)).json()
    await eventually(lambda: _field(api, ops, f"/leads/{lead['id']}", "state", "offered"), what="offered")

    async def deals() -> int:
        return len((await api.get("/deals", params={"partner_id": partner["id"]}, headers=ops)).json())

    named = deal_body(customer_name="Globex", customer_domain="globex.test")
    r = await api.post("/deals", json={**named, "lead_id": lead["id"]}, headers=partner_h)
    assert r.status_code == 409 and "offered" in r.json()["detail"], r.text  # not accepted yet
    r = await api.post("/deals", json={**named, "lead_id": lead["id"]}, headers=other_h)
    assert r.status_code == 422 and "lead_id" in r.json()["detail"], r.text  # not the bystander's lead
    r = await api.post("/deals", json={**named, "lead_id": str(uuid.uuid4())}, headers=partner_h)
    assert r.status_code == 422 and "lead_id" in r.json()["detail"], r.text
    assert await deals() == 0

    assert (await api.post(f"/leads/{lead['id']}/accept", headers=partner_h)).status_code == 200
    deal = await api.post("/deals", json={**named, "lead_id": lead["id"]}, headers=partner_h)
    assert deal.status_code == 201, deal.text
    await eventually(lambda: _field(api, ops, f"/leads/{lead['id']}", "state", "converted"), what="converted")
    assert (await api.get(f"/leads/{lead['id']}", headers=ops)).json()["deal_id"] == deal.json()["id"]
    r = await api.post(
        "/deals", json={**deal_body(customer_domain="later.test"), "lead_id": lead["id"]}, headers=partner_h
    )
    assert r.status_code == 409 and "converted" in r.json()["detail"], r.text
    assert await deals() == 1
