"""Nothing a caller sends can wedge a journey or take the API down: each failure found by
trying the API as a new user and an attacker would (the numbered list of the hardening issue)
is answered with a JSON 4xx naming the field, and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from domain.enums import Role
from journeys.cert.models import Certification
from journeys.deal.models import Deal
from store.models import ApiKey, Cam, Partner
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually

BAD_TEXT = ["Acme\x00Corp", "Acme\ud800", "Acme\x1bCorp", "Acme\x7f"]  # NUL, a lone surrogate, controls


async def count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


def refused(r, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and field in body["detail"], body


async def post_raw(api, path: str, body: dict, headers: dict):
    """JSON with a lone surrogate cannot be encoded by httpx's json=: send it escaped, as an attacker would."""
    import json

    return await api.post(path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("text", BAD_TEXT, ids=["nul", "surrogate", "escape", "delete"])
async def test_1_bad_characters_in_every_stored_string_are_refused(api, ops, sessionmaker, text):
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="registered", domain="clean.test")
    refused(await post_raw(api, "/cams", {"name": text, "email": "x@vendor.test"}, ops), "name")
    refused(
        await post_raw(
            api,
            "/partners",
            {
                "name": text,
                "domain": "bad.test",
                "country": "DE",
                "type": "msp",
                "tier": "gold",
                "cam_id": cam["id"],
                "contact_email": "o@bad.test",
            },
            ops,
        ),
        "name",
    )
    refused(await post_raw(api, "/api-keys", {"role": "ops", "label": text}, ops), "label")
    refused(
        await post_raw(api, "/deals", {**deal_body(customer_name=text), "partner_id": partner["id"]}, ops),
        "customer_name",
    )
    cert = {
        "partner_id": partner["id"],
        "person_name": text,
        "person_email": "p@clean.test",
        "track": "Network",
        "product_category": "network",
        "issued_at": "2026-01-01T00:00:00Z",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    refused(await post_raw(api, "/certifications", cert, ops), "person_name")
    assert (await count(sessionmaker, Cam), await count(sessionmaker, Partner)) == (1, 1)
    assert (await count(sessionmaker, Deal), await count(sessionmaker, Certification)) == (0, 0)
    assert await count(sessionmaker, ApiKey) == 1  # the ops key of the test


@pytest.mark.parametrize(
    "path",
    [
        "/policy/versions/99999999999",
        "/partners?offset=100000000000000000000",
        "/deals?limit=10000000000",
        "/deals?offset=-1",
        "/certifications?expiring_within_days=1e400",
    ],
)
async def test_2_unbounded_numbers_are_refused(api, ops, path):
    r = await api.get(path, headers=ops)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str), r.text


async def test_3_a_bad_decision_reason_never_reaches_the_journey(api, ops, worker, sessionmaker):
    r = await api.put("/policy", json=fast_policy().model_dump(mode="json"), headers=ops)
    assert r.status_code == 201, r.text
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="reason.test")
    r = await api.post("/deals", json={**deal_body(), "partner_id": partner["id"]}, headers=ops)
    assert r.status_code == 201 and r.json()["state"] == "pending_approval", r.text  # gold: a human decides
    deal = r.json()
    r = await api.post(f"/deals/{deal['id']}/decision", json={"decision": "approve", "reason": "ok\x00"}, headers=ops)
    refused(r, "reason")
    r = await api.post(f"/deals/{deal['id']}/decision", json={"decision": "approve", "reason": "fine"}, headers=ops)
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    assert (await api.get(f"/deals/{deal['id']}", headers=ops)).json()["state"] == "approved"  # DB and journey agree


@pytest.mark.parametrize("address", ["a\x1e@vendor.test", "a b@vendor.test", "ü@vendor.test", "a@b", "a@"])
async def test_5_addresses_the_mailer_refuses_are_refused_at_the_edge(api, ops, sessionmaker, address):
    cam = await create_cam(api, ops)
    refused(await post_raw(api, "/cams", {"name": "X", "email": address}, ops), "email")
    body = {
        "name": "P",
        "domain": "mail.test",
        "country": "DE",
        "type": "msp",
        "tier": "gold",
        "cam_id": cam["id"],
        "contact_email": address,
    }
    refused(await post_raw(api, "/partners", body, ops), "contact_email")
    partner = await enrol(api, ops, tier="registered", domain="mail2.test")
    cert = {
        "partner_id": partner["id"],
        "person_name": "Pat",
        "person_email": address,
        "track": "Network",
        "product_category": "network",
        "issued_at": "2026-01-01T00:00:00Z",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    refused(await post_raw(api, "/certifications", cert, ops), "person_email")


@pytest.mark.parametrize(
    "look_alike",
    [
        "Ｇｌｏｂｅｘ Ｃｏｒｐｏｒａｔｉｏｎ",
        "Glo\u200bbex Corporation",
        "Globex\u00a0Corporation",
        "GLOBEX CORPORATION\u2060",
        "Globex Corp.",
        "Globex Corporation\u00ad",
    ],
)
async def test_6_look_alike_customer_names_are_the_same_customer(api, ops, worker, sessionmaker, look_alike):
    r = await api.put("/policy", json=fast_policy().model_dump(mode="json"), headers=ops)
    assert r.status_code == 201, r.text
    a = await enrol(api, ops, tier="registered", domain="a.test")
    b = await enrol(api, ops, tier="registered", domain="b.test")
    a_h = await new_key(sessionmaker, Role.partner, partner_id=a["id"])
    b_h = await new_key(sessionmaker, Role.partner, partner_id=b["id"])
    first = await api.post("/deals", json=deal_body(customer_domain="globex-1.com"), headers=a_h)
    second = await api.post(
        "/deals", json=deal_body(customer_domain="globex-2.com", customer_name=look_alike), headers=b_h
    )
    assert first.status_code == second.status_code == 201, second.text
    assert second.json()["state"] == "conflict_review" and second.json()["conflict_with"] == first.json()["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"day_seconds": 1e12}, "day_seconds"),
        ({"deal": {"protection_days": 1e9}}, "protection_days"),
        ({"day_seconds": 86400, "deal": {"max_extensions": 100, "max_extension_days": 3650}}, "deal.protection_days"),
    ],
)
async def test_7_a_policy_no_journey_could_keep_is_refused(api, ops, worker, change, field):
    body = fast_policy().model_dump(mode="json")
    for section, value in change.items():
        if isinstance(value, dict):
            body[section].update(value)
        else:
            body[section] = value
    r = await api.put("/policy", json=body, headers=ops)
    refused(r, field)
    assert (await api.get("/policy", headers=ops)).json()["version"] == 1  # nothing stored
    partner = await enrol(api, ops, tier="registered", domain="policy.test")
    r = await eventually(lambda: _progress(api, ops, partner["id"]), what="journey runs on the stored policy")
    assert r["state"] == "in_progress"


async def _progress(api, ops, pid):
    r = await api.get(f"/partners/{pid}/onboarding", headers=ops)
    return r.json() if r.status_code == 200 and r.json()["milestones"] else None
