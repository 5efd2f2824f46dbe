"""CAM capacity through the API on the dev server: the policy's tier shares and partner limit,
an assignment beyond either refused with 409 naming the figures (writing nothing), ops' override
audited, and each CAM's load at `GET /cams/{id}/capacity`."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from domain.enums import Role, Tier
from store.models import AuditEvent, Partner
from tests.health.factories import health_policy
from tests.helpers.api import create_cam, enrol, new_key


def _domain() -> str:
    return f"{uuid.uuid4().hex[:8]}.acme.test"


async def _counts(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as session:
        partners = await session.scalar(select(func.count()).select_from(Partner))
        audits = await session.scalar(select(func.count()).where(AuditEvent.action.like("partner.%")))
        return partners, audits


async def test_a_cam_beyond_capacity_is_refused_unless_ops_override(api, ops, sessionmaker):
    policy = health_policy().model_dump(mode="json")
    policy["health"]["coverage"] = {"platinum": 0.5, "gold": 0.25, "silver": 0.0, "registered": 0.0}
    policy["health"]["max_partners_per_cam"] = 4
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    cam, other = await create_cam(api, ops), await create_cam(api, ops, email="robin@vendor.test", name="Robin")
    for _ in range(2):  # 0.5 + 0.5: a full CAM, at the bar
        await enrol(api, ops, tier="platinum", cam_id=cam["id"], domain=_domain())
    r = await api.get(f"/cams/{cam['id']}/capacity", headers=ops)
    assert r.status_code == 200 and (r.json()["load"], r.json()["partners"], r.json()["over"]) == (1.0, 2, None)

    before = await _counts(sessionmaker)
    body = {
        "name": "Over",
        "domain": _domain(),
        "country": "de",
        "type": "reseller",
        "tier": "gold",
        "cam_id": cam["id"],
        "contact_email": "o@over.test",
    }
    r = await api.post("/partners", json=body, headers=ops)
    assert r.status_code == 409, r.text
    assert "a load of 1.25 CAMs (2 platinum \u00d7 0.500, 1 gold \u00d7 0.250), more than 1.00" in r.json()["detail"]
    assert await _counts(sessionmaker) == before

    r = await api.post("/partners", json={**body, "override_capacity": True}, headers=ops)
    assert r.status_code == 201, r.text
    async with sessionmaker() as session:
        audit = await session.scalar(select(AuditEvent).where(AuditEvent.action == "cam.capacity_overridden"))
    assert audit is not None and audit.actor.startswith("ops:") and audit.detail["load"] == 1.25
    r = await api.get(f"/cams/{cam['id']}/capacity", headers=ops)
    assert r.json()["over"].startswith("a load of 1.25 CAMs") and r.json()["by_tier"]["gold"] == 1

    # Moving partners: silver takes no share, but the partner limit holds (4: at the bar, 5: over).
    third = await create_cam(api, ops, email="sam@vendor.test", name="Sam")
    for _ in range(3):
        await enrol(api, ops, tier="silver", cam_id=other["id"], domain=_domain())
    movers = [await enrol(api, ops, tier="silver", cam_id=third["id"], domain=_domain()) for _ in range(2)]
    r = await api.patch(f"/partners/{movers[0]['id']}", json={"cam_id": other["id"]}, headers=ops)
    assert r.status_code == 200, r.text
    r = await api.patch(f"/partners/{movers[1]['id']}", json={"cam_id": other["id"]}, headers=ops)
    assert r.status_code == 409 and "5 active partners, more than the 4 a CAM can hold" in r.json()["detail"]
    async with sessionmaker() as session:
        assert (await session.get(Partner, uuid.UUID(movers[1]["id"]))).cam_id == uuid.UUID(third["id"])


async def test_capacity_is_for_ops_and_the_cam_itself(api, ops, sessionmaker):
    cam, other = await create_cam(api, ops), await create_cam(api, ops, email="robin@vendor.test", name="Robin")
    own = await new_key(sessionmaker, Role.cam, cam_id=uuid.UUID(cam["id"]))
    assert (await api.get(f"/cams/{cam['id']}/capacity", headers=own)).json()["by_tier"][Tier.gold.value] == 0
    assert (await api.get(f"/cams/{other['id']}/capacity", headers=own)).status_code == 403
    assert (await api.get(f"/cams/{uuid.uuid4()}/capacity", headers=ops)).status_code == 404
    assert (await api.get("/cams/nope/capacity", headers=ops)).status_code == 422
