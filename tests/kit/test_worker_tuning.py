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
