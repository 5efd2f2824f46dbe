"""The onboarding journey end to end through the API, on the Temporal dev server, with a
policy whose days last a second; emails read from the SMTP server."""

from __future__ import annotations

from domain.enums import Role
from tests.helpers.api import create_cam, enrol, new_key, templates
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def test_enrol_nudge_escalate_activate_through_the_api(
    api, ops, worker, mailbox, sessionmaker, dev_env, settings
):
    r = await api.put("/policy", json=fast_policy().model_dump(mode="json"), headers=ops)
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="acme.test")
    pid = partner["id"]
    assert partner["status"] == "onboarding"
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=pid)
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])

    # The partner reports portal access itself; the journey records who did it.
    r = await api.post(f"/partners/{pid}/onboarding/milestones/portal_access", headers=partner_h)
    assert r.status_code == 200 and r.json()["already_done"] is False, r.text

    # first_training is due on day 2 (nudge to the partner), escalated to the CAM on day 4.
    await eventually(lambda: "escalation" in templates(mailbox, cam["email"]), timeout=30, what="escalation")
    assert "nudge" in templates(mailbox, "owner@acme.test")
    escalation = next(m for m in mailbox.messages if m["X-CAMLights-Template"] == "escalation")
    assert "Acme Networks" in escalation["Subject"]

    r = await api.get(f"/partners/{pid}/onboarding", headers=cam_h)
    assert r.status_code == 200
    progress = {m["key"]: m for m in r.json()["milestones"]}
    assert progress["portal_access"]["done_by"] == f"partner:{pid}"
    assert progress["first_training"]["escalated"] is True
    assert r.json()["policy_version"] == 2

    for key in ("first_training", "first_certification", "business_plan", "first_deal"):
        r = await api.post(f"/partners/{pid}/onboarding/milestones/{key}", headers=cam_h)
        assert r.status_code == 200, r.text

    async def active():
        r = await api.get(f"/partners/{pid}", headers=ops)
        return r.json()["status"] == "active" and r.json()

    detail = await eventually(active, timeout=20, what="partner active")
    assert all(m["done_at"] for m in detail["milestones"])
    (journey,) = detail["journeys"]
    assert {k: journey[k] for k in ("journey", "workflow_id", "state")} == {
        "journey": "onboarding",
        "workflow_id": f"onboarding-{pid}",
        "state": "activated",
    }
    assert journey["started_at"] is not None  # the start was confirmed
    await eventually(lambda: "activated" in templates(mailbox, cam["email"]), what="activation email")
    assert sorted(m["To"] for m in mailbox.messages if m["X-CAMLights-Template"] == "activated") == sorted(
        ["owner@acme.test", cam["email"]]
    )
    # No message twice.
    ids = [m["Message-ID"] for m in mailbox.messages]
    assert len(ids) == len(set(ids))

    r = await api.get(f"/partners/{pid}/timeline", headers=partner_h)
    assert r.status_code == 200
    actions = [e["action"] for e in r.json()]
    assert actions[0] == "partner.enrolled"
    assert "onboarding.escalation_sent" in actions and actions[-2:] == [
        "onboarding.activated",
        "onboarding.activated_sent",
    ]
    by_actor = {e["actor"] for e in r.json() if e["action"] == "onboarding.milestone_done"}
    assert by_actor == {f"partner:{pid}", f"cam:{cam['id']}"}

    # Ops find the journey by its search attributes.
    query = f"PartnerId = '{pid}' AND Journey = 'onboarding' AND JourneyState = 'activated' AND Tier = 'gold'"
    found = await eventually(lambda: _list(dev_env.client, query), timeout=15, what="visibility")
    assert [w.id for w in found] == [f"onboarding-{pid}"]


async def _list(client, query):
    return [w async for w in client.list_workflows(query=query)]


async def test_registered_partner_ends_at_risk_and_ops_is_alerted(api, ops, worker, mailbox):
    r = await api.put("/policy", json=fast_policy(day_seconds=0.5, plan_days=10).model_dump(mode="json"), headers=ops)
    assert r.status_code == 201
    partner = await enrol(api, ops, tier="registered", domain="tiny.test", name="Tiny Reseller")

    async def at_risk():
        r = await api.get(f"/partners/{partner['id']}", headers=ops)
        return r.json()["status"] == "at_risk"

    await eventually(at_risk, timeout=30, what="partner at_risk")
    await eventually(lambda: len(templates(mailbox)) >= 6, what="all emails")
    assert sorted(templates(mailbox, "owner@tiny.test")) == ["at_risk", "nudge", "nudge", "nudge", "welcome"]
    assert templates(mailbox, "ops@vendor.test") == ["at_risk"]
    assert {m["To"] for m in mailbox.messages} == {"owner@tiny.test", "ops@vendor.test"}  # never a CAM


async def test_coverage_change_reaches_the_running_journey(api, ops, worker, dev_env, sessionmaker):
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="silver", domain="grow.test")
    pid = partner["id"]
    r = await api.patch(f"/partners/{pid}", json={"tier": "gold", "cam_id": cam["id"]}, headers=ops)
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "gold"

    async def progressed():
        r = await api.get(f"/partners/{pid}/onboarding", headers=ops)
        return r.json()["tier"] == "gold" and r.json()

    progress = await eventually(progressed, what="tier in workflow")
    assert progress["cam_id"] == cam["id"]
    assert {m["key"]: m["required"] for m in progress["milestones"]}["business_plan"] is True
    query = f"PartnerId = '{pid}' AND Tier = 'gold' AND CamId = '{cam['id']}'"
    await eventually(lambda: _list(dev_env.client, query), timeout=15, what="search attributes upserted")
    # The CAM now sees the partner; the change is in the timeline.
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    assert (await api.get(f"/partners/{pid}", headers=cam_h)).status_code == 200
    actions = [e["action"] for e in (await api.get(f"/partners/{pid}/timeline", headers=ops)).json()]
    assert "partner.coverage_changed" in actions
    # Invalid change: gold without a CAM.
    r = await api.patch(f"/partners/{pid}", json={"cam_id": None}, headers=ops)
    assert r.status_code == 422 and "cam_id" in r.json()["detail"]


async def test_milestone_report_errors(api, ops, worker, sessionmaker):
    partner = await enrol(api, ops, tier="registered", domain="err.test")
    pid = partner["id"]
    r = await api.post(f"/partners/{pid}/onboarding/milestones/no_such_step", headers=ops)
    assert r.status_code == 404 and "no_such_step" in r.json()["detail"]
    assert "known: portal_access, first_training" in r.json()["detail"]
    r = await api.post(f"/partners/{pid}/onboarding/milestones/portal_access", headers=ops)
    assert r.status_code == 200

    async def done():
        r = await api.get(f"/partners/{pid}/onboarding", headers=ops)
        return any(m["key"] == "portal_access" and m["done_at"] for m in r.json()["milestones"])

    await eventually(done, what="milestone recorded")
    r = await api.post(f"/partners/{pid}/onboarding/milestones/portal_access", headers=ops)
    assert r.status_code == 200 and r.json()["already_done"] is True


async def test_milestone_reports_after_the_journey_ended(api, ops, worker):
    """An ended journey refuses new reports (409) and still answers repeats harmlessly."""
    partner = await enrol(api, ops, tier="registered", domain="ended.test")
    pid = partner["id"]
    for key in ("portal_access", "first_training", "first_deal"):  # every milestone required of 'registered'
        r = await api.post(f"/partners/{pid}/onboarding/milestones/{key}", headers=ops)
        assert r.status_code == 200 and r.json()["already_done"] is False, r.text

    async def activated():
        return (await api.get(f"/partners/{pid}", headers=ops)).json()["status"] == "active"

    await eventually(activated, what="partner activated")

    async def refused_as_ended():  # while its last steps run (emails, events) it refuses as "has ended"
        r = await api.post(f"/partners/{pid}/onboarding/milestones/business_plan", headers=ops)
        assert r.status_code == 409, r.text
        return "not running" in r.json()["detail"]

    await eventually(refused_as_ended, what="the journey's end")
    r = await api.post(f"/partners/{pid}/onboarding/milestones/portal_access", headers=ops)
    assert r.status_code == 200 and r.json()["already_done"] is True
    r = await api.post(f"/partners/{pid}/onboarding/milestones/no_such_step", headers=ops)
    assert r.status_code == 409  # the journey is over: nothing to check the key against
