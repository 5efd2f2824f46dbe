"""The worker's tuning settings (docs/configuration.md): a worker with every one of them set
(concurrency, pollers, graceful shutdown, no sandbox, one pooled SMTP connection) runs a journey
as the default one does: an in-policy deal is approved and its partner emailed, nothing twice."""

from __future__ import annotations

from datetime import timedelta

from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner

from tests.helpers.api import deal_body, enrol, nothing_twice, templates
from tests.helpers.waiting import eventually
from worker.main import build_worker


async def test_a_tuned_worker_approves_and_emails_an_in_policy_deal(api, ops, settings, dev_env, sessionmaker, mailbox):
    tuned = settings.model_copy(
        update={
            "worker_max_concurrent_workflow_tasks": 4,
            "worker_max_concurrent_activities": 3,
            "worker_max_concurrent_local_activities": 2,
            "worker_workflow_task_pollers": 2,
            "worker_activity_task_pollers": 1,
            "worker_graceful_shutdown_seconds": 5,
            "worker_workflow_sandbox": False,
            "smtp_pool_size": 1,
        }
    )
    worker = build_worker(dev_env.client, tuned, sessionmaker, settings.task_queue)
    config = worker.config()
    assert (
        config["max_concurrent_workflow_tasks"],
        config["max_concurrent_activities"],
        config["max_concurrent_local_activities"],
        config["graceful_shutdown_timeout"],
    ) == (4, 3, 2, timedelta(seconds=5))
    assert config["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(2)
    assert config["activity_task_poller_behavior"] == PollerBehaviorSimpleMaximum(1)
    assert isinstance(config["workflow_runner"], UnsandboxedWorkflowRunner)
    async with worker:
        partner = await enrol(api, ops, tier="registered", domain="tuned.test")
        r = await api.post("/deals", json={**deal_body(amount="4800.00"), "partner_id": partner["id"]}, headers=ops)
        assert r.status_code == 201, r.text
        await eventually(lambda: "approved" in templates(mailbox, "owner@tuned.test"), what="the approval email")
    # two journeys' emails (onboarding's welcome, the deal's approval), each once, in either order
    assert sorted(templates(mailbox, "owner@tuned.test")) == ["approved", "welcome"]
    await nothing_twice(sessionmaker, mailbox)


async def test_a_default_worker_opens_no_more_workflow_tasks_than_its_database_pool_has_connections(
    settings, dev_env, sessionmaker
):
    """A workflow task's local steps each hold a pooled connection while the task is open: the
    default worker runs at most as many tasks at once as `make_engine`'s pool has connections
    (more would only wait, and be heartbeated past 5 seconds; bench/README.md, session 53)."""
    from core.settings import Settings
    from store.db import make_engine

    default = Settings.model_fields["worker_max_concurrent_workflow_tasks"].default
    worker = build_worker(
        dev_env.client,
        settings.model_copy(update={"worker_max_concurrent_workflow_tasks": default}),
        sessionmaker,
        settings.task_queue,
    )
    engine = make_engine(settings.database_url)
    try:
        pool = engine.sync_engine.pool
        assert worker.config()["max_concurrent_workflow_tasks"] == default == pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
