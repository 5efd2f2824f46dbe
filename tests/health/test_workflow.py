"""Partner health on the dev server with the real activities, PostgreSQL and SMTP: a lapse moves
the score within the policy's cadence, the early warning reaches the CAM once per episode (also
across a worker restart), a recovery closes the episode and the next lapse opens another."""

from __future__ import annotations

from domain.enums import Tier
from journeys.health.workflow import HealthWorkflow
from tests.health.factories import episodes, health_input, health_policy, lapse, renew_all, save
from tests.helpers.factories import make_cam, make_partner
from tests.helpers.histories import record_history, run_chain
from tests.helpers.waiting import eventually
from worker.main import build_worker


def alerts(mailbox) -> list[tuple[str, str]]:
    return [(m["To"], m["Subject"]) for m in mailbox.messages if m["X-CAMLights-Template"] == "alert"]


async def progress(handle):
    return await handle.query(HealthWorkflow.progress)


async def test_one_alert_per_episode_across_a_worker_restart(dev_env, sessionmaker, mailbox, base_settings, task_queue):
    version = await save(sessionmaker, health_policy())
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    client = dev_env.client
    async with build_worker(client, base_settings, sessionmaker, task_queue):
        handle = await client.start_workflow(
            HealthWorkflow.run, health_input(partner, version), id=f"health-{partner.id}", task_queue=task_queue
        )
        await eventually(lambda: _score(handle, 100), what="the first evaluation: 100")
        await lapse(sessionmaker, partner, "Network Associate")
        await lapse(sessionmaker, partner, "Security Associate")
        await eventually(lambda: _score(handle, 76), what="two lapses: 100 - 2 x 12")
        await eventually(lambda: alerts(mailbox), what="the early warning")
        assert alerts(mailbox) == [(cam.email, f"Early warning: {partner.name}'s health is healthy (76)")]
        body = mailbox.messages[-1].get_body(("plain",)).get_content()
        assert "health dropped 24 points (from 100 to 76)" in body
        assert "\u221212: certification Network Associate lapsed on" in body
    # A new worker: the episode is still open, nothing is sent again while the score falls further.
    async with build_worker(client, base_settings, sessionmaker, task_queue):
        await lapse(sessionmaker, partner, "Cloud Associate")
        await eventually(lambda: _score(handle, 64), what="a third lapse")
        before = (await progress(handle)).evaluations
        await eventually(lambda: _evaluated(handle, before + 5), what="five more evaluations")
        assert len(alerts(mailbox)) == 1
        assert [(e.episode, e.closed_at is None) for e in await episodes(sessionmaker, partner)] == [(1, True)]
        # Renewed: healthy again, the episode closes; the next lapse is a new episode, a new alert.
        await renew_all(sessionmaker, partner)
        await eventually(lambda: _closed(sessionmaker, partner), what="the episode closed")
        for track in ("A", "B"):
            await lapse(sessionmaker, partner, track)
        await eventually(lambda: len(alerts(mailbox)) == 2, what="the second episode's alert")
        assert [e.episode for e in await episodes(sessionmaker, partner)] == [1, 2]
        assert (await progress(handle)).episodes == 2
        await record_history(handle, "episodes")
    # The kit's generation implies the journey's own patches (generation 13): a new run records the
    # one marker of its generation, not one per patch (each with a TemporalChangeVersion upsert).
    history = await handle.fetch_history()
    markers = [e.marker_recorded_event_attributes.marker_name for e in history.events]
    assert markers.count("core_patch") == 1


async def _score(handle, value: int) -> bool:
    p = await progress(handle)
    return p.score == value


async def _evaluated(handle, n: int) -> bool:
    return (await progress(handle)).evaluations >= n


async def _closed(sessionmaker, partner) -> bool:
    rows = await episodes(sessionmaker, partner)
    return bool(rows) and rows[-1].closed_at is not None


async def test_the_episode_carries_over_continue_as_new(dev_env, sessionmaker, mailbox, base_settings, task_queue):
    version = await save(sessionmaker, health_policy(evaluations_per_run=2))
    partner = await make_partner(sessionmaker, tier=Tier.registered)  # no CAM: the alert goes to ops
    client = dev_env.client
    async with build_worker(client, base_settings, sessionmaker, task_queue):
        handle = await client.start_workflow(
            HealthWorkflow.run, health_input(partner, version), id=f"health-{partner.id}", task_queue=task_queue
        )
        await eventually(lambda: _score(handle, 100), what="the first evaluation")
        for track in ("A", "B"):
            await lapse(sessionmaker, partner, track)
        await eventually(lambda: alerts(mailbox), what="the early warning")
        assert [to for to, _ in alerts(mailbox)] == [base_settings.ops_email]
        await eventually(lambda: _runs(client, handle.id, 4), what="runs continued as new")
        assert len(alerts(mailbox)) == 1 and (await progress(handle)).episodes == 1
        assert (await progress(handle)).state == "alerting"


async def _runs(client, wid: str, n: int) -> bool:
    return len(await run_chain(client, wid)) >= n
