"""Partner health through the API on the dev server: `POST /partners` starts `health-{id}` with the
partner; an overdue onboarding milestone moves the score within the policy's cadence; the
answer explains the score (its contributions sum to it) and its trend; bad input is a 4xx."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from journeys.health.models import HealthScore
from store.models import JourneyRecord
from tests.health.factories import health_policy
from tests.helpers.api import create_cam, enrol
from tests.helpers.waiting import eventually


async def test_enrolment_starts_health_and_an_overdue_milestone_moves_it(api, ops, worker, sessionmaker):
    policy = health_policy().model_dump(mode="json")
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain=f"{uuid.uuid4().hex[:8]}.acme.test")
    pid = partner["id"]
    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, f"health-{pid}")
        assert record is not None and record.started_at is not None

    async def overdue():
        r = await api.get(f"/partners/{pid}/health", headers=ops)
        assert r.status_code == 200, r.text
        body = r.json()
        lines = [c["what"] for c in body["contributions"]]
        return body if any("Log in to the partner portal overdue" in w for w in lines) else None

    body = await eventually(overdue, what="the overdue portal milestone in the health")
    assert sum(c["points"] for c in body["contributions"]) == body["score"] < 100
    assert body["contributions"][0] == {"key": "baseline", "kind": "baseline", "points": 100, "what": "baseline"}
    assert body["trend"][0]["score"] == 100 and body["trend"][-1]["score"] == body["score"]
    assert any(line.startswith("\u22128: onboarding milestone") for p in body["trend"] for line in p["changes"])


async def test_bad_input_is_a_4xx_and_writes_nothing(api, ops, sessionmaker):
    async with sessionmaker() as session:
        before = await session.scalar(select(func.count()).select_from(HealthScore))
    assert (await api.get(f"/partners/{uuid.uuid4()}/health", headers=ops)).status_code == 404
    assert (await api.get("/partners/not-a-uuid/health", headers=ops)).status_code == 422
    assert (await api.get(f"/partners/{uuid.uuid4()}/health")).status_code == 401
    policy = health_policy().model_dump(mode="json")
    for bad in ({"healthy_from": 40, "watch_from": 50}, {"weights": {"unknown": 3}}, {"drop_points": 0}):
        body = {**policy, "health": {**policy["health"], **bad}}
        assert (await api.put("/policy", json=body, headers=ops)).status_code == 422, bad
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(HealthScore)) == before
