"""Journeys' events refresh partner health (dev server, real worker and API): with the periodic
evaluation an hour away, a certification lapsing in the cert journey shows in the partner's
health within seconds, because publishing `certification.lapsed` (a cert `health_events` type)
signals `health-{partner}`; a partner whose health workflow is not running is no error."""

from __future__ import annotations

import uuid

from activities.webhooks import refresh
from core import registry
from tests.cert.test_api import cert_body
from tests.health.factories import health_policy
from tests.helpers.api import create_cam, enrol
from tests.helpers.waiting import eventually


async def test_a_lapse_refreshes_health_long_before_the_next_evaluation(api, ops, worker, dev_env):
    # no second evaluation in this test; no sweep (tests/health/test_sweep.py): the refresh of each event
    policy = health_policy(evaluate_seconds=3600, sweep_seconds=0).model_dump(mode="json")
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain=f"{uuid.uuid4().hex[:8]}.acme.test")
    pid = partner["id"]

    async def health():
        r = await api.get(f"/partners/{pid}/health", headers=ops)
        assert r.status_code == 200, r.text
        return r.json()

    first = await eventually(lambda: _scored(health), what="the first evaluation, at the start")
    assert not any("certification" in c["what"] for c in first["contributions"])
    r = await api.post("/certifications", json=cert_body(pid, 2), headers=ops)
    assert r.status_code == 201, r.text

    async def lapsed():
        body = await health()
        return body if any(c["kind"] == "cert_lapsed" for c in body["contributions"]) else None

    body = await eventually(lapsed, what="the lapse in the health, from the refresh of certification.lapsed")
    assert any("certification Network Associate lapsed" in line for p in body["trend"] for line in p["changes"])
    assert sum(c["points"] for c in body["contributions"]) == body["score"]

    # Refreshing a partner without a running health workflow is nothing: no error, no wait.
    (health_journey,) = registry.refreshes().journeys
    await refresh(dev_env.client, [health_journey], str(uuid.uuid4()))


async def _scored(health):
    body = await health()
    return body if body["score"] is not None else None
