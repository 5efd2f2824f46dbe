"""The health sweep (journeys/health/sweep.py) on the dev server with the real worker and API:
with the entity workflows' own cadence an hour away, certifications lapsing in the cert journey
(published through the real publish path, which signals nothing while the sweep is on) move the
partner's health row through the sweep; the drop reaches the CAM once, through `health-{partner}`
(signal `swept`), which never evaluated again; the same batch swept again writes nothing twice
and alerts nobody twice."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment

from core import registry
from journeys.health.activities import HealthActivities
from journeys.health.domain import SWEEP, SweepTick
from journeys.health.models import HealthScore
from journeys.health.workflow import HealthWorkflow
from store.models.integrations import WebhookEvent
from tests.cert.test_api import cert_body
from tests.health.factories import health_policy
from tests.helpers.api import create_cam, enrol
from tests.helpers.histories import record_history
from tests.helpers.waiting import eventually


def alerts(mailbox) -> list[str]:
    return [m["To"] for m in mailbox.messages if m["X-CAMLights-Template"] == "alert"]


async def counts(sessionmaker) -> tuple[int, int]:
    """Health rows and `partner.health_changed` events (the journeys publish others meanwhile)."""
    async with sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(HealthScore))
        events = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.type == "partner.health_changed")
        )
    return int(rows or 0), int(events or 0)


async def test_the_sweep_moves_health_and_the_alert_goes_once(api, ops, worker, dev_env, sessionmaker, mailbox):
    policy = health_policy(evaluate_seconds=3600, sweep_seconds=0.5).model_dump(mode="json")
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201  # the hook starts the sweep
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain=f"{uuid.uuid4().hex[:8]}.acme.test")
    pid = partner["id"]
    entity = dev_env.client.get_workflow_handle(f"health-{pid}")

    async def health():
        r = await api.get(f"/partners/{pid}/health", headers=ops)
        assert r.status_code == 200, r.text
        return r.json()

    async def lapses(n: int):
        body = await health()
        return body if sum(c["kind"] == "cert_lapsed" for c in body["contributions"]) == n else None

    first = await eventually(lambda: _scored(health), what="the first evaluation, at the start")
    for track in ("Network Associate", "Security Associate"):
        r = await api.post("/certifications", json=cert_body(pid, 1, track=track), headers=ops)
        assert r.status_code == 201, r.text
    body = await eventually(lambda: lapses(2), what="both lapses in the health, through the sweep")
    assert sum(c["points"] for c in body["contributions"]) == body["score"] <= first["score"] - 24

    async def published(kind: str) -> list:
        async with sessionmaker() as session:
            q = select(WebhookEvent).where(WebhookEvent.type == kind).order_by(WebhookEvent.seq)
            return list(await session.scalars(q))

    lapsed = [e.seq for e in await eventually(lambda: _two(published), what="both lapses published")]
    async with sessionmaker() as session:
        keys = list(await session.scalars(select(HealthScore.idempotency_key).order_by(HealthScore.id)))
    changed = [e.idempotency_key for e in await published("partner.health_changed")]
    assert all(k.startswith(f"{SWEEP}:{pid}:") for k in keys[1:]), keys  # every row after the first: the sweep's
    assert changed and all(k.startswith(f"{SWEEP}:{pid}:") for k in changed[1:]), changed

    # The drop of 24 points: one alert to the CAM, sent by the entity workflow on the sweep's signal.
    await eventually(lambda: alerts(mailbox), what="the early warning")
    assert alerts(mailbox) == [cam["email"]]
    progress = await entity.query(HealthWorkflow.progress)
    assert (progress.evaluations, progress.episodes) == (1, 1)  # no refresh: no evaluation of its own

    # The same batch again (the events from before the first lapse): nothing new, nobody told twice.
    before = await counts(sessionmaker)
    acts = HealthActivities(sessionmaker, registry.HEALTH_SIGNALS, registry.HEALTH_EVENTS)
    again = await ActivityEnvironment(client=dev_env.client).run(acts.sweep, SweepTick(after=lapsed[0] - 1))
    assert again.partners == 1  # re-scored under the keys of that batch: their rows are there
    assert await counts(sessionmaker) == before
    assert alerts(mailbox) == [cam["email"]]
    assert (await entity.query(HealthWorkflow.progress)).episodes == 1
    await record_history(entity, "swept")
    await record_history(dev_env.client.get_workflow_handle(SWEEP), "sweep")


async def _scored(health):
    body = await health()
    return body if body["score"] is not None else None


async def _two(published):
    found = await published("certification.lapsed")
    return found if len(found) == 2 else None
