"""Leads from the CRM (`POST /events/crm`, type `lead.created`, contributed by the leads manifest's
`crm_events`): created exactly as `POST /leads` creates them (the same validation, routed and
offered), idempotent on the CRM's id of the lead, a duplicate of an open lead refused naming it,
bad data refused writing nothing."""

from __future__ import annotations

from sqlalchemy import select

from journeys.leads.models import Lead
from store.models import AuditEvent
from tests.helpers.api import enrol
from tests.helpers.waiting import eventually
from tests.leads.test_api import count_leads, lead_body, put_policy


def crm_lead(event_id: str, **over) -> dict:
    return {"event_id": event_id, "type": "lead.created", "data": lead_body(external_id="00Q-1", **over)}


async def test_a_crm_lead_is_created_as_post_leads_creates_it_once(api, ops, worker, sessionmaker):
    await put_policy(api, ops, categories=["network"])
    partner = await enrol(api, ops, tier="registered", domain="crm-partner.test")
    for event, status in (
        (crm_lead("e-bad-1", country="de"), 422),  # the validation of POST /leads
        (crm_lead("e-bad-2", product_category="gardening"), 422),  # not a category of the policy
        ({**crm_lead("e-bad-3"), "deal_id": partner["id"]}, 422),  # an opportunity's field
        ({"event_id": "e-bad-4", "type": "lead.created"}, 422),  # no data
        ({**crm_lead("e-bad-5"), "type": "opportunity.closed_won"}, 422),  # data on a deal's event
        ({**crm_lead("e-bad-6"), "data": {**lead_body(), "external_id": None}}, 422),  # the CRM's id is required
    ):
        r = await api.post("/events/crm", json=event, headers=ops)
        assert r.status_code == status, (event, r.text)
        assert r.json()["detail"], r.text
    assert await count_leads(sessionmaker) == 0

    r = await api.post("/events/crm", json=crm_lead("e-1"), headers=ops)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["journey"] == "leads" and out["state"] == "new" and out["duplicate"] is False
    lead_id = out["id"]
    again = await api.post("/events/crm", json=crm_lead("e-1"), headers=ops)  # the CRM retries
    assert again.status_code == 200 and again.json() | {"duplicate": False} == out
    resent = await api.post("/events/crm", json=crm_lead("e-2", company="Initech AG"), headers=ops)
    assert resent.status_code == 200 and resent.json()["id"] == lead_id and resent.json()["duplicate"]
    dup = await api.post("/events/crm", json={**crm_lead("e-3"), "data": lead_body(external_id="00Q-2")}, headers=ops)
    assert dup.status_code == 409 and lead_id in dup.json()["detail"], dup.text
    assert await count_leads(sessionmaker) == 1

    async def offered() -> bool:
        return (await api.get(f"/leads/{lead_id}", headers=ops)).json()["state"] == "offered"

    await eventually(offered, what="the CRM's lead routed and offered")
    async with sessionmaker() as session:
        lead = await session.get(Lead, lead_id)
        created = await session.scalar(select(AuditEvent).where(AuditEvent.action == "leads.created"))
    assert lead.external_id == "00Q-1" and lead.domain == "initech.test" and lead.value_minor == 2_500_000
    assert lead.partner_id is None and created.detail["crm_event_id"] == "e-1"
