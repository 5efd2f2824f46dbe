"""Certification renewal end to end through the API on the dev server (days of a second):
record, reminders, lapse restricting deal registration in the category, renewal restoring it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.enums import Role
from tests.helpers.api import create_cam, deal_body, enrol, new_key, templates
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def cert_policy(api, ops, **cert):
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["cert"].update({"reminder_days": [3, 2], "cam_alert_days": 2, **cert})
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201


def cert_body(partner_id, seconds: float, category="network", track="Network Associate"):
    now = datetime.now(UTC)
    return {
        "partner_id": partner_id,
        "person_name": "Pat Engineer",
        "person_email": "pat@gold.test",
        "track": track,
        "product_category": category,
        "issued_at": (now - timedelta(days=300)).isoformat(),
        "expires_at": (now + timedelta(seconds=seconds)).isoformat(),
    }


async def test_lapse_restricts_the_category_and_renewal_restores_it(api, ops, worker, mailbox, sessionmaker):
    await cert_policy(api, ops)
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="gold.test")
    pid = partner["id"]
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=pid)
    r = await api.post("/certifications", json=cert_body(pid, 8), headers=partner_h)
    assert r.status_code == 403  # ops (or an LMS with an ops key) records certifications
    r = await api.post("/certifications", json=cert_body(pid, 8), headers=ops)
    assert r.status_code == 201, r.text
    cert = r.json()

    async def milestone():
        r = await api.get(f"/partners/{pid}/onboarding", headers=ops)
        return any(m["key"] == "first_certification" and m["done_at"] for m in r.json()["milestones"])

    await eventually(milestone, what="first_certification milestone")

    await eventually(lambda: "lapsed" in templates(mailbox, cam["email"]), timeout=20, what="lapse")
    assert templates(mailbox, "pat@gold.test")[:2] == ["expiry_reminder", "expiry_reminder"]
    assert "cam_alert" in templates(mailbox, cam["email"])
    assert "lapsed" in templates(mailbox, partner["contact_email"])
    got = (await api.get(f"/partners/{pid}/certifications", headers=partner_h)).json()
    assert [(c["id"], c["state"], c["restricted"]) for c in got] == [(cert["id"], "lapsed", True)]

    r = await api.post("/deals", json=deal_body(product_category="network"), headers=partner_h)
    assert r.status_code == 403
    assert "Network Associate" in r.json()["detail"] and cert["id"] in r.json()["detail"]
    r = await api.post("/deals", json=deal_body(product_category="security"), headers=partner_h)
    assert r.status_code == 201  # only that category is restricted

    r = await api.post(
        f"/certifications/{cert['id']}/renewals",
        json={"expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
        headers=ops,
    )
    assert r.status_code == 422 and "expires_at" in r.json()["detail"]
    new_expiry = datetime.now(UTC) + timedelta(days=365)
    r = await api.post(
        f"/certifications/{cert['id']}/renewals", json={"expires_at": new_expiry.isoformat()}, headers=ops
    )
    assert r.status_code == 200, r.text
    assert r.json()["period"] == 2 and r.json()["state"] == "active"
    got = (await api.get(f"/partners/{pid}/certifications", headers=ops)).json()[0]
    assert (got["state"], got["restricted"], got["period"]) == ("active", False, 2)
    r = await api.post("/deals", json=deal_body(product_category="network"), headers=partner_h)
    assert r.status_code == 201, r.text
    timeline = [e["action"] for e in (await api.get(f"/partners/{pid}/timeline", headers=ops)).json()]
    assert "cert.lapsed" in timeline and "cert.active" in timeline


async def test_review_policy_holds_the_deal_for_the_cam(api, ops, worker, mailbox, sessionmaker):
    await cert_policy(api, ops, lapse_action="review")
    partner = await enrol(api, ops, tier="registered", domain="reg.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    cert = (await api.post("/certifications", json=cert_body(partner["id"], 1.5), headers=ops)).json()

    async def lapsed():
        return (await api.get(f"/partners/{partner['id']}/certifications", headers=ops)).json()[0]["restricted"]

    await eventually(lapsed, timeout=20, what="lapse")
    r = await api.post("/deals", json=deal_body(amount="10.00"), headers=partner_h)  # inside auto-approval
    assert r.status_code == 201
    request = await eventually(
        lambda: next((m for m in mailbox.messages if m["X-CAMLights-Template"] == "approval_request"), None)
    )
    assert request["To"] == "ops@vendor.test"  # no CAM: ops reviews
    assert cert["id"] in request.get_body(("plain",)).get_content()
    assert (await api.get(f"/deals/{r.json()['id']}", headers=ops)).json()["state"] == "pending_approval"


async def test_portfolio_view_of_expiring_certifications(api, ops, worker, sessionmaker):
    await cert_policy(api, ops)
    cam_a = await create_cam(api, ops, email="a@vendor.test")
    cam_b = await create_cam(api, ops, email="b@vendor.test")
    pa = await enrol(api, ops, tier="gold", cam_id=cam_a["id"], domain="pa.test")
    pb = await enrol(api, ops, tier="gold", cam_id=cam_b["id"], domain="pb.test")
    soon = (await api.post("/certifications", json=cert_body(pa["id"], 86400 * 10), headers=ops)).json()
    (
        await api.post(
            "/certifications",
            json=cert_body(pa["id"], 86400 * 200, track="Security Pro", category="security"),
            headers=ops,
        )
    ).json()
    (await api.post("/certifications", json=cert_body(pb["id"], 86400 * 5), headers=ops)).json()
    cam_a_h = await new_key(sessionmaker, Role.cam, cam_id=cam_a["id"])
    r = await api.get("/certifications?expiring_within_days=30", headers=cam_a_h)
    assert [c["id"] for c in r.json()] == [soon["id"]]
    assert len((await api.get("/certifications?expiring_within_days=30", headers=ops)).json()) == 2
    assert (await api.get(f"/partners/{pb['id']}/certifications", headers=cam_a_h)).status_code == 403
    bad = cert_body(pa["id"], 10)
    bad["expires_at"] = "2027-01-01T00:00:00"
    r = await api.post("/certifications", json=bad, headers=ops)
    assert r.status_code == 422 and "expires_at" in r.json()["detail"]
    bad = cert_body(pa["id"], 10)
    bad["issued_at"] = (datetime.now(UTC) + timedelta(days=900)).isoformat()
    r = await api.post("/certifications", json=bad, headers=ops)
    assert r.status_code == 422 and "after issued_at" in r.json()["detail"]
