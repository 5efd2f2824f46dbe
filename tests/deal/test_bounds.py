"""A deal cannot be flooded and answers once recorded (dev server, days of a second): extension
requests and decisions are read back right after their answer; stage changes are capped by the
policy (409 through the API); a long protection phase continues as new, carrying its state."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from domain.enums import Role
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def put_policy(api, ops, **limits):
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["deal"].update({"approval_sla_days": 200, "escalation_days": 400, "stall_days": 300})
    policy["deal"]["tiers"]["registered"]["protection_days"] = 600
    policy["limits"] = limits
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text


async def approved_deal(api, sessionmaker, partner_h, **body):
    r = await api.post("/deals", json=deal_body(**body), headers=partner_h)
    assert r.status_code == 201, r.text
    deal = r.json()

    async def approved():
        got = (await api.get(f"/deals/{deal['id']}", headers=partner_h)).json()
        return got if got["state"] == "approved" else None

    return await eventually(approved, what="the deal approved")


async def actions(api, ops, partner_id) -> list[str]:
    return [e["action"] for e in (await api.get(f"/partners/{partner_id}/timeline", headers=ops)).json()]


async def test_extension_requests_and_decisions_are_answered_once_recorded(api, ops, worker, sessionmaker):
    await put_policy(api, ops)
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="ext-gold.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    deal = (await api.post("/deals", json=deal_body(), headers=partner_h)).json()
    r = await api.post(f"/deals/{deal['id']}/decision", json={"decision": "approve", "reason": "ok"}, headers=cam_h)
    assert r.status_code == 200, r.text

    # A CAM tier: the request waits for the CAM, who is told before the answer.
    r = await api.post(f"/deals/{deal['id']}/extensions", json={"days": 5, "reason": "slipped"}, headers=partner_h)
    assert r.status_code == 200 and r.json()["status"] == "awaiting_cam", r.text
    assert (await actions(api, ops, partner["id"])).count("deal.extension_request_sent") == 1
    r = await api.post(
        f"/deals/{deal['id']}/extensions/decision", json={"decision": "reject", "reason": "no"}, headers=cam_h
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert "deal.extension_rejected_sent" in await actions(api, ops, partner["id"])

    r = await api.post(f"/deals/{deal['id']}/extensions", json={"days": 5}, headers=partner_h)
    assert r.status_code == 200 and r.json()["status"] == "awaiting_cam", r.text
    assert (await actions(api, ops, partner["id"])).count("deal.extension_request_sent") == 2
    r = await api.post(f"/deals/{deal['id']}/extensions/decision", json={"decision": "approve"}, headers=cam_h)
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    got = (await api.get(f"/deals/{deal['id']}", headers=partner_h)).json()
    assert (got["extensions_used"], got["protected_until"]) == (1, r.json()["protected_until"]), got

    # No CAM: granted at once, in the DB by the answer.
    small = await enrol(api, ops, tier="registered", domain="ext-small.test")
    small_h = await new_key(sessionmaker, Role.partner, partner_id=small["id"])
    auto = await approved_deal(
        api, sessionmaker, small_h, amount="100.00", customer_name="Initech", customer_domain="initech.com"
    )
    r = await api.post(f"/deals/{auto['id']}/extensions", json={"days": 5}, headers=small_h)
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    got = (await api.get(f"/deals/{auto['id']}", headers=small_h)).json()
    assert (got["extensions_used"], got["protected_until"]) == (1, r.json()["protected_until"]), got


async def test_stage_changes_are_capped_by_the_policy(api, ops, worker, sessionmaker):
    await put_policy(api, ops, max_stage_changes=3)
    partner = await enrol(api, ops, tier="registered", domain="stages.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    deal = await approved_deal(api, sessionmaker, partner_h, amount="100.00")
    for stage in ("proposal", "negotiation", "proposal"):
        r = await api.post(f"/deals/{deal['id']}/stage", json={"stage": stage}, headers=partner_h)
        assert r.status_code == 202, r.text
    r = await api.post(f"/deals/{deal['id']}/stage", json={"stage": "negotiation"}, headers=partner_h)
    assert r.status_code == 409 and "every stage change the policy allows" in r.json()["detail"], r.text


async def test_a_long_protection_phase_continues_as_new_with_its_state(api, ops, worker, sessionmaker, dev_env):
    await put_policy(api, ops, history_events=100)
    partner = await enrol(api, ops, tier="registered", domain="long-deal.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    deal = await approved_deal(api, sessionmaker, partner_h, amount="100.00")
    r = await api.post(f"/deals/{deal['id']}/extensions", json={"days": 5}, headers=partner_h)
    assert r.status_code == 200, r.text
    before = (await api.get(f"/deals/{deal['id']}/progress", headers=partner_h)).json()
    handle = dev_env.client.get_workflow_handle(f"deal-{deal['id']}")
    first_run = (await handle.describe()).run_id
    stages = ["proposal", "negotiation"] * 15
    for n, stage in enumerate(stages, start=1):
        r = await api.post(f"/deals/{deal['id']}/stage", json={"stage": stage}, headers=partner_h)
        assert r.status_code == 202, r.text

        async def moved(n: int = n, stage: str = stage):
            got = (await api.get(f"/deals/{deal['id']}/progress", headers=partner_h)).json()
            return got if got["stage"] == stage and got["stage_changes_left"] == 200 - n else None

        await eventually(moved, what=f"stage change {n}")
    assert (await handle.describe()).run_id != first_run
    first = await dev_env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    assert first.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    after = (await api.get(f"/deals/{deal['id']}/progress", headers=partner_h)).json()
    keep = ("state", "protected_until", "extensions_used", "submitted_at", "decided_by", "policy_version")
    assert {k: after[k] for k in keep} == {k: before[k] for k in keep}
    r = await api.post(f"/deals/{deal['id']}/stage", json={"stage": "closed_won"}, headers=partner_h)
    assert r.status_code == 202, r.text

    async def won():
        return (await api.get(f"/deals/{deal['id']}", headers=partner_h)).json()["state"] == "won"

    await eventually(won, what="the continued run closing the deal")
