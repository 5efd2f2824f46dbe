"""Deal registration end to end through the API on the dev server (days of a second):
conflict checks, decisions by API and by signed email link, filters, search attributes."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from domain.enums import Role
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def fast(api, ops, **deal_over):
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["deal"].update(
        {"approval_sla_days": 2, "escalation_days": 4, "stall_days": 30, "decision_link_days": 30, **deal_over}
    )
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text


async def deal_state(api, headers, deal_id):
    return (await api.get(f"/deals/{deal_id}", headers=headers)).json()["state"]


def links(message) -> dict[str, str]:
    text = message.get_body(("plain",)).get_content()
    return {
        k: re.search(rf"{k.capitalize()}:\s+(\S+)", text).group(1).replace("http://camlights.test", "")
        for k in ("approve", "reject")
    }


async def test_auto_approval_and_onboarding_milestone(api, ops, worker, mailbox, sessionmaker):
    await fast(api, ops)
    partner = await enrol(api, ops, tier="registered", domain="small.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    r = await api.post("/deals", json=deal_body(amount="2500.00"), headers=partner_h)
    assert r.status_code == 201, r.text
    deal = r.json()
    assert deal["state"] == "pending_approval" and deal["amount_minor"] == 250000
    await eventually(lambda: _is(api, partner_h, deal["id"], "approved"), what="auto approval")
    got = (await api.get(f"/deals/{deal['id']}", headers=partner_h)).json()
    assert got["decided_by"] == "system" and got["protected_until"]

    async def milestone():
        r = await api.get(f"/partners/{partner['id']}/onboarding", headers=ops)
        return any(
            m["key"] == "first_deal" and m["done_by"] == f"journey:deal-{deal['id']}" for m in r.json()["milestones"]
        )

    await eventually(milestone, what="first_deal milestone")
    await eventually(lambda: any(m["X-CAMLights-Template"] == "approved" for m in mailbox.messages))


async def _is(api, headers, deal_id, state):
    return await deal_state(api, headers, deal_id) == state


async def test_cam_approves_and_rejects_through_the_api(api, ops, worker, sessionmaker):
    await fast(api, ops)
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="gold.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    first = (await api.post("/deals", json=deal_body(), headers=partner_h)).json()
    second = (
        await api.post(
            "/deals",
            json=deal_body(customer_name="Initech", customer_domain="initech.com", partner_id=partner["id"]),
            headers=cam_h,
        )
    ).json()
    r = await api.post(
        f"/deals/{first['id']}/decision", json={"decision": "approve", "reason": "ok"}, headers=partner_h
    )
    assert r.status_code == 403
    r = await api.post(f"/deals/{first['id']}/decision", json={"decision": "maybe", "reason": "ok"}, headers=cam_h)
    assert r.status_code == 422 and "decision" in r.json()["detail"]
    r = await api.post(
        f"/deals/{first['id']}/decision", json={"decision": "approve", "reason": "good fit"}, headers=cam_h
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["decided_by"] == f"cam:{cam['id']}"
    r = await api.post(f"/deals/{first['id']}/decision", json={"decision": "reject", "reason": "late"}, headers=cam_h)
    assert r.status_code == 409 and "no longer pending" in r.json()["detail"]
    r = await api.post(
        f"/deals/{second['id']}/decision", json={"decision": "reject", "reason": "house account"}, headers=ops
    )
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    got = (await api.get(f"/deals/{second['id']}", headers=cam_h)).json()
    assert (got["state"], got["decision_reason"]) == ("rejected", "house account")
    # Stage changes need an approved deal; won ends the journey.
    r = await api.post(f"/deals/{second['id']}/stage", json={"stage": "proposal"}, headers=partner_h)
    assert r.status_code == 409
    r = await api.post(f"/deals/{first['id']}/stage", json={"stage": "closed_won"}, headers=partner_h)
    assert r.status_code == 202
    await eventually(lambda: _is(api, partner_h, first["id"], "won"), what="won")


async def test_one_click_links_apply_once_and_refuse_reuse_tampering_and_expiry(
    api, ops, worker, mailbox, sessionmaker
):
    await fast(api, ops)
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="platinum", cam_id=cam["id"], domain="plat.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    deal = (await api.post("/deals", json=deal_body(), headers=partner_h)).json()
    request = await eventually(
        lambda: next((m for m in mailbox.messages if m["X-CAMLights-Template"] == "approval_request"), None),
        what="approval request email",
    )
    assert request["To"] == cam["email"]
    urls = links(request)
    page = await api.get(urls["approve"])
    assert page.status_code == 200 and "Globex Corporation" in page.text and "Confirm: approve" in page.text
    assert await deal_state(api, ops, deal["id"]) == "pending_approval"  # opening changes nothing
    tampered = urls["approve"][:-3] + ("xyz" if not urls["approve"].endswith("xyz") else "abc")
    r = await api.post(tampered, data={"reason": ""})
    assert r.status_code == 403 and "not valid" in r.text
    # Two concurrent confirmations of the same link: exactly one applies.
    results = await asyncio.gather(
        api.post(urls["approve"], data={"reason": "seen the PO"}),
        api.post(urls["approve"], data={"reason": "seen the PO"}),
    )
    assert sorted(r.status_code for r in results) == [200, 410], [r.text for r in results]
    got = (await api.get(f"/deals/{deal['id']}", headers=ops)).json()
    assert (got["state"], got["decided_by"], got["decision_reason"]) == ("approved", f"cam:{cam['id']}", "seen the PO")
    r = await api.post(urls["approve"], data={})
    assert r.status_code == 410 and "already used" in r.text
    r = await api.post(urls["reject"], data={})  # the other link: the deal is no longer pending
    assert r.status_code == 409 and "no longer pending" in r.text

    # Expired links: a policy whose links last 1 second.
    await fast(api, ops, decision_link_days=1)
    deal2 = (
        await api.post(
            "/deals", json=deal_body(customer_name="Umbrella", customer_domain="umbrella.com"), headers=partner_h
        )
    ).json()
    msg = await eventually(
        lambda: next(
            (
                m
                for m in mailbox.messages
                if m["X-CAMLights-Template"] == "approval_request" and "Umbrella" in m["Subject"]
            ),
            None,
        )
    )
    url = links(msg)["approve"]
    r = await eventually(lambda: _answer_unless(api, url, 200), what="the link expired")  # no fixed sleep
    assert r.status_code == 410 and "expired" in r.text
    assert await deal_state(api, ops, deal2["id"]) == "pending_approval"


async def test_conflicts_duplicates_and_concurrent_submissions(api, ops, worker, sessionmaker, dev_env):
    await fast(api, ops)
    cam = await create_cam(api, ops)
    a = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="a.test", name="A Partner")
    b = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="b.test", name="B Partner")
    a_h = await new_key(sessionmaker, Role.partner, partner_id=a["id"])
    b_h = await new_key(sessionmaker, Role.partner, partner_id=b["id"])
    first = (
        await api.post("/deals", json=deal_body(customer_domain="acme.co.uk", customer_name="ACME Ltd"), headers=a_h)
    ).json()
    # Another partner, the same customer written differently, the same category: conflict review.
    r = await api.post(
        "/deals",
        json=deal_body(customer_domain="https://WWW.shop.Acme.co.uk/path", customer_name="The Acme, Inc."),
        headers=b_h,
    )
    assert r.status_code == 201 and r.json()["state"] == "conflict_review"
    assert r.json()["conflict_with"] == first["id"]
    # Another category is no conflict.
    r = await api.post("/deals", json=deal_body(customer_domain="acme.co.uk", product_category="security"), headers=b_h)
    assert r.json()["state"] == "pending_approval"
    # The same partner again: refused, naming the existing deal; nothing written.
    r = await api.post("/deals", json=deal_body(customer_domain="acme.co.uk", customer_name="Acme"), headers=a_h)
    assert r.status_code == 409 and first["id"] in r.json()["detail"]

    # Simultaneous submissions for one new customer by two partners, both inside auto-approval.
    await fast(
        api,
        ops,
        tiers={
            t: {"auto_approve": True, "auto_approve_max_minor": 10**9, "protection_days": 60}
            for t in ("platinum", "gold", "silver", "registered")
        },
    )
    body = deal_body(customer_domain="hooli.com", customer_name="Hooli")
    ra, rb = await asyncio.gather(
        api.post("/deals", json=body, headers=a_h), api.post("/deals", json=body, headers=b_h)
    )
    assert {ra.status_code, rb.status_code} == {201}
    assert sorted([ra.json()["state"], rb.json()["state"]]) == ["conflict_review", "pending_approval"]
    winner, loser = (ra, rb) if ra.json()["state"] == "pending_approval" else (rb, ra)
    await eventually(lambda: _is(api, ops, winner.json()["id"], "approved"), what="winner auto-approved")
    # The loser's journey has passed its approval point once it asked a human to decide: from
    # then on only a decision can approve it, so checking its state now is final, not a race.
    await eventually(lambda: _approval_requested(sessionmaker, loser.json()["id"]), what="loser sent to review")
    assert await deal_state(api, ops, loser.json()["id"]) == "conflict_review"  # never both approved
    # Visibility lists the loser itself as in conflict review (its partner's earlier Acme deal is too).
    query = f"WorkflowId = 'deal-{loser.json()['id']}' AND JourneyState = 'conflict_review'"
    found = await eventually(lambda: _count(dev_env, query), timeout=15, what="visibility")
    assert found == 1


async def _answer_unless(api, url: str, status: int):
    r = await api.get(url)
    return None if r.status_code == status else r


async def _approval_requested(sessionmaker, deal_id: str) -> bool:
    from sqlalchemy import func, select

    from store.models import OutboxMessage

    async with sessionmaker() as session:
        return bool(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.idempotency_key == f"deal-{deal_id}:notify:approval_request",
                    OutboxMessage.status == "sent",
                )
            )
        )


async def _count(dev_env, query):
    return (await dev_env.client.count_workflows(query)).count


async def test_deal_lists_are_scoped_and_filtered(api, ops, worker, sessionmaker):
    protection = {"platinum": 1200, "gold": 1200, "silver": 900, "registered": 600}
    tiers = fast_policy(day_seconds=1).model_dump(mode="json")["deal"]["tiers"]
    await fast(api, ops, tiers={t: {**rules, "protection_days": protection[t]} for t, rules in tiers.items()})
    cam_a = await create_cam(api, ops, email="a@vendor.test")
    cam_b = await create_cam(api, ops, email="b@vendor.test")
    pa = await enrol(api, ops, tier="silver", cam_id=cam_a["id"], domain="pa.test")
    pb = await enrol(api, ops, tier="registered", domain="pb.test")
    pa_h = await new_key(sessionmaker, Role.partner, partner_id=pa["id"])
    pb_h = await new_key(sessionmaker, Role.partner, partner_id=pb["id"])
    r = await api.post("/deals", json=deal_body(amount="100.00"), headers=pa_h)
    assert r.status_code == 201, r.text
    da = r.json()
    other = deal_body(customer_domain="other.com", customer_name="Other", amount="100.00")
    r = await api.post("/deals", json=other, headers=pb_h)
    assert r.status_code == 201, r.text
    db = r.json()
    cam_a_h = await new_key(sessionmaker, Role.cam, cam_id=cam_a["id"])
    cam_b_h = await new_key(sessionmaker, Role.cam, cam_id=cam_b["id"])
    assert [d["id"] for d in (await api.get("/deals", headers=cam_a_h)).json()] == [da["id"]]
    assert (await api.get("/deals", headers=cam_b_h)).json() == []
    assert (await api.get(f"/deals/{db['id']}", headers=cam_a_h)).status_code == 403
    assert [d["id"] for d in (await api.get("/deals", headers=pb_h)).json()] == [db["id"]]
    assert len((await api.get("/deals", headers=ops)).json()) == 2
    assert [d["id"] for d in (await api.get(f"/deals?partner_id={pb['id']}", headers=ops)).json()] == [db["id"]]
    await eventually(lambda: _is(api, ops, da["id"], "approved"))
    await eventually(lambda: _is(api, ops, db["id"], "approved"))
    # Protection: silver 900 days, registered 600 days (policy days of a second): a window ending half-way
    # between the two ends lists the registered partner's deal only, however long the test took so far.
    ends = {
        d: datetime.fromisoformat((await api.get(f"/deals/{d}", headers=ops)).json()["protected_until"])
        for d in (da["id"], db["id"])
    }
    assert (ends[da["id"]] - ends[db["id"]]).total_seconds() > 200
    halfway = ends[db["id"]] + (ends[da["id"]] - ends[db["id"]]) / 2
    within = (halfway - datetime.now(UTC)).total_seconds() / 86400
    soon = (await api.get(f"/deals?expiring_within_days={within:.6f}", headers=ops)).json()
    assert [d["id"] for d in soon] == [db["id"]]
    assert len((await api.get("/deals?state=approved", headers=ops)).json()) == 2
    r = await api.get("/deals?state=nonsense", headers=ops)
    assert r.status_code == 422 and "state" in r.json()["detail"]
    r = await api.post("/deals", json=deal_body(amount="-5"), headers=pa_h)
    assert r.status_code == 422 and "amount" in r.json()["detail"]
    r = await api.post("/deals", json=deal_body(partner_id=pb["id"]), headers=pa_h)
    assert r.status_code == 403


async def test_registration_retry_with_idempotency_key_and_pending_query(api, ops, worker, sessionmaker, dev_env):
    await fast(api, ops)
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="retry.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    headers = {**partner_h, "Idempotency-Key": "deal-retry-1"}
    first = await api.post("/deals", json=deal_body(), headers=headers)
    again = await api.post("/deals", json=deal_body(), headers=headers)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    # Without the key the same registration is a duplicate, naming the deal.
    r = await api.post("/deals", json=deal_body(), headers=partner_h)
    assert r.status_code == 409 and first.json()["id"] in r.json()["detail"]
    assert len((await api.get("/deals", headers=ops)).json()) == 1
    # Ops list the deals pending approval since before a moment, by search attributes.
    # A cutoff in whole seconds after the deal started, once the clock has passed it.
    started = datetime.fromisoformat(first.json()["created_at"])
    after = started.replace(microsecond=0) + timedelta(seconds=2)  # its workflow started well within
    await eventually(lambda: datetime.now(UTC) > after, what="the clock past the start's second")
    cutoff = after.strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (
        f"Journey = 'deal' AND JourneyState = 'pending_approval' AND StartTime < '{cutoff}' "
        f"AND PartnerId = '{partner['id']}'"
    )
    assert await eventually(lambda: _count(dev_env, query), timeout=15, what="pending deals by StartTime") == 1
