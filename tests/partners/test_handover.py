"""CAM handover (issue 22 item 4) through the API on the dev server: every refusal is a 4xx that
writes nothing; a handover moves each partner and every running journey of it to the receiving
CAM once (pending approval included: the old CAM's link answers 410, the receiving CAM's link
from its handover pack decides), sends one introduction per partner and one pack, shows its
progress, and a CAM with partners cannot be deactivated until they are handed over."""

from __future__ import annotations

import re
import uuid
from collections import Counter

from sqlalchemy import func, select

from api import journeys
from domain.enums import Role
from domain.journeys import workflow_id
from store.models import AuditEvent, Handover, JourneyRecord, Partner
from store.models.integrations import WebhookEvent
from tests.helpers.api import approve_link, create_cam, deal_body, enrol, follows_cam, new_key, templates
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from tests.mdf.test_api import body as mdf_body
from tests.partners.test_handover_replay import record_handover


async def _written(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as session:
        handovers = await session.scalar(select(func.count()).select_from(Handover))
        audits = await session.scalar(select(func.count()).where(AuditEvent.action.like("cam.%")))
        return handovers, audits


async def test_a_handover_moves_every_journey_once_and_the_old_cams_links_are_gone(
    api, ops, worker, mailbox, sessionmaker, dev_env
):
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["deal"].update({"approval_sla_days": 200, "escalation_days": 400, "decision_link_days": 30})
    policy["mdf"]["decision_link_days"] = 30
    for level in policy["mdf"]["approval_levels"]:
        level.update({"sla_days": 200, "escalation_days": 400})
    policy["health"]["coverage"] = {"platinum": 0.5, "gold": 0.25, "silver": 0.0, "registered": 0.0}
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    old = await create_cam(api, ops)
    new = await create_cam(api, ops, email="nina@vendor.test", name="Nina")
    spare = await create_cam(api, ops, email="sam@vendor.test", name="Sam")
    await enrol(api, ops, tier="platinum", cam_id=new["id"], domain="ninas.test", name="Nina's own")
    platinum = await enrol(api, ops, tier="platinum", cam_id=old["id"], domain="plat.test", name="Platinum Co")
    gold = await enrol(api, ops, tier="gold", cam_id=old["id"], domain="gold.test", name="Gold Co")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=platinum["id"])
    deal = (await api.post("/deals", json=deal_body(), headers=partner_h)).json()
    old_approve = await eventually(
        lambda: approve_link(mailbox, "approval_request", old["email"]), what="the old CAM's approval request"
    )
    gold_h = await new_key(sessionmaker, Role.partner, partner_id=gold["id"])
    mdf = (await api.post("/mdf/requests", json=mdf_body(amount_minor=80_000), headers=gold_h)).json()
    old_mdf_approve = await eventually(
        lambda: approve_link(mailbox, "request_approval_request", old["email"]), what="the old CAM's MDF request"
    )

    # Refusals: each a 4xx JSON naming what was wrong, nothing written.
    before = await _written(sessionmaker)
    url = f"/cams/{old['id']}/handover"
    refused = [
        (await api.post(f"/cams/{uuid.uuid4()}/handover", json={"to_cam_id": new["id"]}, headers=ops), 404, "no CAM"),
        (await api.post(url, json={"to_cam_id": old["id"]}, headers=ops), 422, "another CAM"),
        (await api.post(url, json={"to_cam_id": str(uuid.uuid4())}, headers=ops), 422, "no CAM with id"),
        (
            await api.post(url, json={"to_cam_id": new["id"], "partner_ids": [str(uuid.uuid4())]}, headers=ops),
            422,
            "not partners of CAM",
        ),
        (await api.post(url, json={"to_cam_id": new["id"], "partner_ids": []}, headers=ops), 422, "partner_ids"),
        (await api.post(url, json={"to_cam_id": new["id"], "note": "x" * 1001}, headers=ops), 422, "note"),
        (
            await api.post(f"/cams/{spare['id']}/handover", json={"to_cam_id": new["id"]}, headers=ops),
            409,
            "no partners",
        ),
        (await api.post(url, json={"to_cam_id": new["id"]}, headers=ops), 409, "a load of 1.25 CAMs"),
        (await api.post(url, json={"to_cam_id": new["id"]}, headers=partner_h), 403, "ops"),
    ]
    for answer, status, words in refused:
        assert answer.status_code == status and words in answer.text, (status, answer.text)
    # Deactivation at the bar: a CAM with partners is refused naming them, one without is not.
    r = await api.post(f"/cams/{old['id']}/deactivate", headers=ops)
    assert r.status_code == 409 and "still covers 2 partner(s)" in r.json()["detail"] and "handover" in r.text, r.text
    assert (await api.post(f"/cams/{spare['id']}/deactivate", headers=ops)).status_code == 200
    r = await api.post(url, json={"to_cam_id": spare["id"]}, headers=ops)
    assert r.status_code == 422 and "deactivated" in r.text
    assert await _written(sessionmaker) == (before[0], before[1] + 1)  # only spare's deactivation

    r = await api.post(
        url, json={"to_cam_id": new["id"], "note": "Both renew in March.", "override_capacity": True}, headers=ops
    )
    assert r.status_code == 202, r.text
    handover = r.json()
    assert handover["state"] == "running" and handover["workflow_id"] == f"cam-handover-{handover['id']}"
    progress = f"/cams/{old['id']}/handovers/{handover['id']}"
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=new["id"])

    async def completed():
        got = (await api.get(progress, headers=cam_h)).json()
        return got if got["state"] == "completed" else None

    done = await eventually(completed, what="the handover completed")
    await record_handover(dev_env.client.get_workflow_handle(handover["workflow_id"]), "two-partners")
    assert (done["moved"], done["pending"]) == (2, 0)
    by_partner = {p["partner_id"]: p for p in done["partners"]}
    assert by_partner[platinum["id"]]["state"] == "moved" and by_partner[platinum["id"]]["journeys_moved"] >= 2
    assert (await api.get(f"/cams/{spare['id']}/handovers/{handover['id']}", headers=ops)).status_code == 404
    assert (await api.get(progress, headers=partner_h)).status_code == 403

    # Every journey of both partners follows the new CAM, told once (its record at the version).
    async with sessionmaker() as session:
        partners = (await session.scalars(select(Partner).where(Partner.cam_id == uuid.UUID(new["id"])))).all()
        assert {str(p.id) for p in partners} >= {platinum["id"], gold["id"]}
        records = (
            await session.scalars(
                select(JourneyRecord).where(
                    JourneyRecord.partner_id.in_([uuid.UUID(platinum["id"]), uuid.UUID(gold["id"])])
                )
            )
        ).all()
        assert all(r.coverage_version == 1 for r in records), [(r.workflow_id, r.coverage_version) for r in records]
        events = await session.scalar(select(func.count()).where(WebhookEvent.type == "cam.handover_completed"))
        assert events == 2
    async with sessionmaker() as session:  # nothing behind: the reconciler has nothing to send
        assert await journeys.deliver_coverage(session, dev_env.client) == 0
    for record in records:  # the search attributes follow (onboarding upserts them from its main loop)
        if record.journey in ("deal", "onboarding"):
            wid = record.workflow_id
            await eventually(lambda wid=wid: follows_cam(dev_env.client, wid, new["id"]), what=wid)

    # One introduction per partner, one pack; the old CAM's link is gone, the pack's link decides.
    assert sorted(m["To"] for m in mailbox.messages if m["X-CAMLights-Template"] == "introduction") == sorted(
        [platinum["contact_email"], gold["contact_email"]]
    )
    [pack] = [m for m in mailbox.messages if m["X-CAMLights-Template"] == "pack"]
    text = pack.get_body(("plain",)).get_content()
    assert (
        pack["To"] == new["email"]
        and "Both renew in March." in text
        and "Gold Co" in text
        and "2 partner(s)" in pack["Subject"]
    )
    for old_link in (old_approve, old_mdf_approve):
        for answer in (await api.get(old_link), await api.post(old_link, data={"reason": "ok"})):
            assert answer.status_code == 410 and "no longer covers the partner" in answer.text, answer.text
    links = [u.replace("http://camlights.test", "") for u in re.findall(r"Approve:\s+(\S+)", text)]
    [new_approve] = [u for u in links if u.startswith("/deals/links/")]
    [new_mdf_approve] = [u for u in links if u.startswith("/mdf/links/")]  # the pending MDF request's, new too
    assert (await api.get(new_approve)).status_code == 200
    assert (await api.post(new_approve, data={"reason": "welcome"})).status_code == 200
    got = (await api.get(f"/deals/{deal['id']}", headers=ops)).json()
    assert got["state"] == "approved" and got["decided_by"] == f"cam:{new['id']}", got
    assert (await api.get(new_mdf_approve)).status_code == 200
    assert (await api.post(new_mdf_approve, data={"reason": "welcome"})).status_code == 200
    got = (await api.get(f"/mdf/requests/{mdf['id']}", headers=ops)).json()
    assert got["state"] == "approved" and got["progress"]["decisions"][0]["by"] == f"cam:{new['id']}", got

    assert (await api.post(f"/cams/{old['id']}/deactivate", headers=ops)).status_code == 200  # no partners now
    ids = Counter(m["Message-ID"] for m in mailbox.messages)  # the journeys keep sending: no count to wait for
    assert all(n == 1 for n in ids.values()), ids
    async with sessionmaker() as session:
        keys = (
            await session.scalars(select(AuditEvent.idempotency_key).where(AuditEvent.idempotency_key.is_not(None)))
        ).all()
        actions = Counter((await session.scalars(select(AuditEvent.action))).all())
    assert len(keys) == len(set(keys))
    assert actions["cam.handover_requested"] == actions["cam.handover_completed"] == 1
    assert actions["cam.capacity_overridden"] == 1 and actions["handover.introduction_sent"] == 2
    assert workflow_id("deal", deal["id"]) in {r.workflow_id for r in records}
    assert "pack" in templates(mailbox, new["email"])
