"""Rules every endpoint keeps: auth and roles, clear 422/409 that write nothing, safe retries
with Idempotency-Key, and the versioned policy."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from domain.enums import Role
from store.models import AuditEvent, IdempotencyRecord, JourneyRecord, Partner
from tests.helpers.api import create_cam, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def _counts(sessionmaker) -> dict[str, int]:
    async with sessionmaker() as session:
        return {
            m.__tablename__: await session.scalar(select(func.count()).select_from(m))
            for m in (Partner, AuditEvent, JourneyRecord, IdempotencyRecord)
        }


async def _workflows(dev_env, query="Journey = 'onboarding'") -> int:
    return (await dev_env.client.count_workflows(query)).count


async def test_health_needs_no_key_everything_else_does(api):
    r = await api.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    for method, path in [
        ("get", "/partners"),
        ("post", "/partners"),
        ("get", "/policy"),
        ("put", "/policy"),
        ("get", "/cams"),
        ("post", "/api-keys"),
        ("get", "/partners/00000000-0000-0000-0000-000000000000/timeline"),
    ]:
        r = await api.request(method.upper(), path, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert "Authorization" in r.json()["detail"]
    r = await api.get("/partners", headers={"Authorization": "Bearer cl_not-a-real-key"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    r = await api.get("/partners", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    # /docs can send the key: every endpoint but health declares the bearer scheme.
    spec = (await api.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert spec["paths"]["/partners"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


async def test_cam_and_partner_keys_see_only_their_own(api, ops, worker, sessionmaker):
    cam_a = await create_cam(api, ops, email="a@vendor.test", name="A")
    cam_b = await create_cam(api, ops, email="b@vendor.test", name="B")
    p_a = await enrol(api, ops, tier="gold", cam_id=cam_a["id"], domain="a-partner.test")
    p_b = await enrol(api, ops, tier="gold", cam_id=cam_b["id"], domain="b-partner.test")
    cam_a_h = await new_key(sessionmaker, Role.cam, cam_id=cam_a["id"])
    partner_a_h = await new_key(sessionmaker, Role.partner, partner_id=p_a["id"])

    assert [p["id"] for p in (await api.get("/partners", headers=cam_a_h)).json()] == [p_a["id"]]
    assert (await api.get(f"/partners/{p_a['id']}", headers=cam_a_h)).status_code == 200
    for path in (f"/partners/{p_b['id']}", f"/partners/{p_b['id']}/timeline", f"/partners/{p_b['id']}/onboarding"):
        r = await api.get(path, headers=cam_a_h)
        assert r.status_code == 403, (path, r.text)
        assert "may not access" in r.json()["detail"]
    r = await api.post(f"/partners/{p_b['id']}/onboarding/milestones/portal_access", headers=cam_a_h)
    assert r.status_code == 403
    assert (await api.get(f"/cams/{cam_b['id']}", headers=cam_a_h)).status_code == 403

    assert [p["id"] for p in (await api.get("/partners", headers=partner_a_h)).json()] == [p_a["id"]]
    assert (await api.get(f"/partners/{p_b['id']}", headers=partner_a_h)).status_code == 403
    # Only ops enrol, change coverage, change the policy or create keys.
    body = {
        "name": "X",
        "domain": "x.test",
        "country": "DE",
        "type": "msp",
        "tier": "registered",
        "contact_email": "x@x.test",
    }
    for headers in (cam_a_h, partner_a_h):
        assert (await api.post("/partners", json=body, headers=headers)).status_code == 403
        assert (
            await api.patch(f"/partners/{p_a['id']}", json={"tier": "platinum"}, headers=headers)
        ).status_code == 403
        assert (
            await api.put("/policy", json=fast_policy().model_dump(mode="json"), headers=headers)
        ).status_code == 403
        assert (await api.post("/api-keys", json={"role": "ops"}, headers=headers)).status_code == 403
    # A missing partner is a 404 for ops.
    r = await api.get("/partners/00000000-0000-0000-0000-000000000000", headers=ops)
    assert r.status_code == 404 and "no partner" in r.json()["detail"]


async def test_bad_enrolment_is_422_naming_the_field_and_writes_nothing(api, ops, worker, sessionmaker, dev_env):
    cam = await create_cam(api, ops)
    good = {
        "name": "Acme",
        "domain": "acme.test",
        "country": "DE",
        "type": "reseller",
        "tier": "gold",
        "cam_id": cam["id"],
        "contact_email": "o@acme.test",
    }
    before = await _counts(sessionmaker)
    workflows_before = await _workflows(dev_env)
    cases = [
        ({"tier": "diamond"}, "tier"),
        ({"country": "Germany"}, "country"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"domain": "not a domain"}, "domain"),
        ({"type": "pirate"}, "type"),
        ({"cam_id": None}, "cam_id"),  # gold needs a CAM
        ({"tier": "registered"}, "cam_id"),  # registered has none
        ({"cam_id": "5b0c9a52-9d0e-4b51-9d8b-1f3c1c2b9a11"}, "cam_id"),  # no such CAM
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
    ]
    for change, field in cases:
        r = await api.post(
            "/partners",
            json={**good, **change},
            headers=ops,
        )
        assert r.status_code == 422, (change, r.text)
        assert field in r.json()["detail"], (change, r.json())
    r = await api.post("/partners", json={k: v for k, v in good.items() if k != "tier"}, headers=ops)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tier"
    assert await _counts(sessionmaker) == before
    assert await _workflows(dev_env) == workflows_before


async def test_duplicate_domain_is_409_and_writes_nothing(api, ops, worker, sessionmaker, dev_env, mailbox):
    first = await enrol(api, ops, tier="registered", domain="dup.test")
    # the first partner's journey at rest (plan and welcome written): what follows is the refusal's alone
    await eventually(lambda: any(m["To"] == "owner@dup.test" for m in mailbox.messages), what="the welcome")
    before = await _counts(sessionmaker)
    body = {
        "name": "Other",
        "domain": "WWW.Dup.test",
        "country": "FR",
        "type": "msp",
        "tier": "registered",
        "contact_email": "o@other.test",
    }
    r = await api.post("/partners", json=body, headers=ops)
    assert r.status_code == 409
    assert "dup.test" in r.json()["detail"] and first["id"] in r.json()["detail"]
    assert await _counts(sessionmaker) == before
    assert await _workflows(dev_env, f"PartnerId = '{first['id']}'") == 1


async def test_idempotency_key_retry_returns_the_same_partner(api, ops, worker, sessionmaker, dev_env):
    body = {
        "name": "Retry Co",
        "domain": "retry.test",
        "country": "NL",
        "type": "integrator",
        "tier": "registered",
        "contact_email": "o@retry.test",
    }
    headers = {**ops, "Idempotency-Key": "enrol-retry-1"}
    first = await api.post("/partners", json=body, headers=headers)
    assert first.status_code == 201
    again = await api.post("/partners", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    # Concurrent retries of a new request: one partner.
    body2 = {**body, "domain": "retry2.test"}
    h2 = {**ops, "Idempotency-Key": "enrol-retry-2"}
    results = await asyncio.gather(*[api.post("/partners", json=body2, headers=h2) for _ in range(4)])
    assert {r.status_code for r in results} == {201}, [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Partner)) == 2
    assert await _workflows(dev_env, f"PartnerId = '{first.json()['id']}'") == 1
    # The same key with another body is refused.
    r = await api.post("/partners", json={**body, "name": "Changed"}, headers=headers)
    assert r.status_code == 409 and "different request" in r.json()["detail"]


async def test_policy_versions_apply_to_journeys_started_after(api, ops, worker):
    v1 = (await api.get("/policy", headers=ops)).json()
    assert v1["version"] == 1 and v1["policy"]["onboarding"]["plan_days"] == 90
    before = await enrol(api, ops, tier="registered", domain="before.test")

    bad = fast_policy().model_dump(mode="json")
    bad["onboarding"]["escalation_days"] = -3
    r = await api.put("/policy", json=bad, headers=ops)
    assert r.status_code == 422 and "onboarding.escalation_days" in r.json()["detail"]
    late = fast_policy().model_dump(mode="json")
    late["onboarding"]["milestones"][0]["due_day"] = 99
    r = await api.put("/policy", json=late, headers=ops)
    assert r.status_code == 422 and "portal_access" in r.json()["detail"]
    assert (await api.get("/policy", headers=ops)).json()["version"] == 1  # nothing written

    new = fast_policy(day_seconds=3600).model_dump(mode="json")
    r = await api.put("/policy", json=new, headers=ops)
    assert r.status_code == 201 and r.json()["version"] == 2
    after = await enrol(api, ops, tier="registered", domain="after.test")

    async def pinned(partner) -> int:  # 0 until the journey has read its policy (its first step)
        return (await api.get(f"/partners/{partner['id']}/onboarding", headers=ops)).json()["policy_version"]

    await eventually(lambda: _pinned_both(pinned(before), pinned(after)), what="both journeys read their policy")
    assert await pinned(before) == 1 and await pinned(after) == 2
    assert (await api.get("/policy/versions/1", headers=ops)).json()["policy"]["day_seconds"] == 86400
    assert (await api.get("/policy/versions/9", headers=ops)).status_code == 404


async def test_api_keys_are_created_by_ops_and_stored_hashed(api, ops, sessionmaker):
    cam = await create_cam(api, ops)
    r = await api.post("/api-keys", json={"role": "cam", "cam_id": cam["id"], "label": "casey laptop"}, headers=ops)
    assert r.status_code == 201
    secret = r.json()["key"]
    assert (await api.get("/partners", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    from store.models import ApiKey

    async with sessionmaker() as session:
        stored = (await session.scalars(select(ApiKey.key_hash))).all()
    assert secret not in stored and all(len(h) == 64 for h in stored)
    r = await api.post("/api-keys", json={"role": "cam"}, headers=ops)
    assert r.status_code == 422 and "cam_id" in r.json()["detail"]


async def test_a_revoked_key_is_refused_at_once_and_stored_answers_keep_no_secret(api, ops, sessionmaker):
    """Issue 29: the idempotency record of a key's creation keeps no secret and expires; a revoked
    key answers 401 from the next request on; the revocation is audited."""
    from sqlalchemy import update

    from api.idempotency import ANSWER_TTL

    r = await api.post("/api-keys", json={"role": "ops", "label": "crm"}, headers={**ops, "Idempotency-Key": "k1"})
    assert r.status_code == 201, r.text
    created = r.json()
    key = {"Authorization": f"Bearer {created['key']}"}
    async with sessionmaker() as session:
        stored = (await session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "k1"))).one()
    assert created["key"] not in str(stored.response) and stored.response["id"] == created["id"]
    again = await api.post("/api-keys", json={"role": "ops", "label": "crm"}, headers={**ops, "Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.json()["id"] == created["id"]
    assert again.json()["key"].startswith("(shown once")

    # Expired answers are not replayed and are purged by the next record.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "k1")
            .values(created_at=func.now() - (ANSWER_TTL + timedelta(minutes=1)))
        )
    fresh = await api.post("/api-keys", json={"role": "ops", "label": "crm"}, headers={**ops, "Idempotency-Key": "k1"})
    assert fresh.status_code == 201 and fresh.json()["id"] != created["id"]
    async with sessionmaker() as session:
        left = (await session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "k1"))).all()
    assert [row.response["id"] for row in left] == [fresh.json()["id"]]

    # Revocation: ops only, at once, once, audited.
    assert (await api.get("/partners", headers=key)).status_code == 200
    assert (await api.post(f"/api-keys/{created['id']}/revoke", headers=key)).status_code == 200  # itself
    assert (await api.get("/partners", headers=key)).status_code == 401
    r = await api.post(f"/api-keys/{created['id']}/revoke", headers=ops)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert (await api.post(f"/api-keys/{uuid.uuid4()}/revoke", headers=ops)).status_code == 404
    cam = await create_cam(api, ops, email="revoker@vendor.test")
    cam_key = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    assert (await api.post(f"/api-keys/{fresh.json()['id']}/revoke", headers=cam_key)).status_code == 403
    async with sessionmaker() as session:
        audited = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "api_key.revoked"))).all()
    assert [e.detail["key_id"] for e in audited] == [created["id"]]


async def _pinned_both(a, b) -> bool:
    return (await a) > 0 and (await b) > 0


async def test_the_timeline_pages_by_after_and_refuses_an_unknown_entry(api, ops, sessionmaker):
    """Oldest first, `limit` a page; `?after=<id of the last entry>` continues where the page
    ended (together the pages are the whole timeline, once); an id that is no entry is a 404 naming
    it; a limit past 1,000 is a 422."""
    pid = (await enrol(api, ops, tier="registered", domain="timeline-pages.example"))["id"]
    async with sessionmaker() as session, session.begin():
        for n in range(7):
            session.add(AuditEvent(partner_id=uuid.UUID(pid), actor="ops:test", action=f"test.step_{n}", detail={}))
    whole = (await api.get(f"/partners/{pid}/timeline", headers=ops)).json()
    assert len(whole) >= 7 and [e["id"] for e in whole] == sorted(e["id"] for e in whole)
    pages, after = [], None
    while True:
        r = await api.get(
            f"/partners/{pid}/timeline", params={"limit": 3, **({"after": after} if after else {})}, headers=ops
        )
        assert r.status_code == 200, r.text
        if not r.json():
            break
        assert len(r.json()) <= 3
        pages += r.json()
        after = r.json()[-1]["id"]
    assert pages == whole
    r = await api.get(f"/partners/{pid}/timeline", params={"after": 2**62}, headers=ops)
    assert r.status_code == 404 and str(2**62) in r.json()["detail"], r.text
    assert (await api.get(f"/partners/{pid}/timeline", params={"limit": 1001}, headers=ops)).status_code == 422
