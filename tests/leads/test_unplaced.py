"""A lead nobody takes, end to end on the dev server: `lead.created` and `lead.unplaced` reach a
webhook subscriber exactly once each (a second time unplaced is a second event), on the program's
stream; the unplaced lead is on ops' Today list and on the Today list of the CAM whose partner was
offered it, with its whole routing path, and not on another CAM's; the offer about to expire is on
that CAM's list while it is live."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from api.auth import Principal
from api.web import today
from domain.enums import Role
from domain.webhooks import PROGRAM_STREAM
from store.models.integrations import WebhookDelivery, WebhookEvent
from tests.helpers.api import create_cam, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from tests.integrations.test_webhooks import receiver, subscribe  # noqa: F401  (the receiver fixture)
from tests.leads.test_api import OPS, lead_body


def cam(cam_id: str) -> Principal:
    return Principal(key_id=uuid.uuid4(), role=Role.cam, cam_id=uuid.UUID(cam_id), partner_id=None)


async def items(sessionmaker, principal: Principal, lead_id: str) -> list:
    async with sessionmaker() as session:
        return [i for i in (await today.collect(session, principal)).items if i.entity_id == lead_id]


async def test_an_unplaced_lead_is_published_once_and_listed_with_its_path(
    api,
    ops,
    worker,
    receiver,  # noqa: F811  (the fixture imported above)
    sessionmaker,
):
    policy = fast_policy(day_seconds=600).model_dump(mode="json")  # an offer window of minutes
    policy["webhooks"] = {"first_retry_seconds": 1, "max_retry_seconds": 2, "retry_hours": 0.004}
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    await subscribe(api, ops, receiver, "leads", ["lead.created", "lead.unplaced"])
    receiver.fail_first["leads"] = 1  # a retried delivery is still received once
    casey, other = await create_cam(api, ops), await create_cam(api, ops, email="robin@vendor.test", name="Robin")
    # the only partner serving Liechtenstein (its territory): offered the lead, declines it
    partner = await enrol(api, ops, tier="gold", cam_id=casey["id"], domain="alpine.test", name="Alpine")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    r = await api.put(f"/leads/preferences/{partner['id']}", json={"countries": ["LI"]}, headers=ops)
    assert r.status_code == 200, r.text
    r = await api.post("/leads", json=lead_body(country="LI", region="", domain="vaduz.test"), headers=ops)
    assert r.status_code == 201, r.text
    lead = r.json()["id"]

    await eventually(lambda: _state(api, ops, lead, "offered"), what="the offer")
    (expiring,) = await items(sessionmaker, cam(casey["id"]), lead)
    assert (expiring.label, expiring.partner_id) == ("Lead offer expiring", uuid.UUID(partner["id"]))
    r = await api.post(f"/leads/{lead}/decline", json={"reason_code": "not_our_product"}, headers=partner_h)
    assert r.status_code == 200, r.text
    await eventually(lambda: _state(api, ops, lead, "unplaced"), what="unplaced: nobody else serves LI")

    (mine,) = await items(sessionmaker, cam(casey["id"]), lead)
    assert (mine.label, mine.partner_id, mine.partner_name) == ("Lead unplaced", uuid.UUID(partner["id"]), "Alpine")
    assert "round_robin picked" in mine.detail and "offer 1 to Alpine: declined (not_our_product)" in mine.detail
    assert mine.detail.endswith("no rule placed the lead; it waits for a human"), mine.detail
    assert await items(sessionmaker, cam(other["id"]), lead) == []
    (for_ops,) = await items(sessionmaker, OPS, lead)
    assert for_ops.label == "Lead unplaced" and for_ops.detail == mine.detail

    r = await api.post(f"/leads/{lead}/recall", json={"reason": "try again"}, headers=ops)
    assert r.status_code == 200, r.text  # routed again: the partner that declined is never offered again

    async def arrived() -> bool:
        got = [(e.event["type"], e.event["data"]["lead_id"]) for e in receiver.accepted.get("leads", [])]
        return got.count(("lead.unplaced", lead)) == 2

    await eventually(arrived, what="both lead.unplaced events", timeout=30)
    received = [e.event for e in receiver.accepted["leads"] if e.event["data"]["lead_id"] == lead]
    assert [e["type"] for e in received] == ["lead.created", "lead.unplaced", "lead.unplaced"]
    created, first, second = (e["data"] for e in received)
    assert (created["state"], created["country"], created["by"][:4]) == ("new", "LI", "ops:")
    assert first["offered"] == [partner["id"]] and first["reason"] == "no rule placed the lead; it waits for a human"
    assert second["offered"] == [partner["id"]] and second["state"] == "unplaced"
    async with sessionmaker() as session:
        events = (
            await session.execute(
                select(WebhookEvent.type, WebhookEvent.partner_id, func.count(WebhookDelivery.id))
                .join(WebhookDelivery, WebhookDelivery.event_seq == WebhookEvent.seq)
                .where(WebhookEvent.data["lead_id"].astext == lead)
                .group_by(WebhookEvent.seq)
                .order_by(WebhookEvent.seq)
            )
        ).all()
    assert [(t, str(p), n) for t, p, n in events] == [
        ("lead.created", PROGRAM_STREAM, 1),
        ("lead.unplaced", PROGRAM_STREAM, 1),
        ("lead.unplaced", PROGRAM_STREAM, 1),
    ]


async def _state(api, headers, lead_id, state) -> bool:
    return (await api.get(f"/leads/{lead_id}", headers=headers)).json()["state"] == state
