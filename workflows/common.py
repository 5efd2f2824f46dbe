"""Helpers every journey workflow uses: activity options and the two-step notification."""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.common import CommonActivities
    from domain.enums import Journey
    from domain.journeys import NotifyInput, SendInput

# Short: a worker that dies mid-activity delays the retry by at most this much.
ACTIVITY_TIMEOUT = timedelta(seconds=15)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30))


def activity_options() -> dict:
    return {"start_to_close_timeout": ACTIVITY_TIMEOUT, "retry_policy": RETRY}


async def notify(*, key: str, partner_id: str, journey: Journey, template: str, recipients: list[str],
                 audit_action: str, context: dict | None = None) -> None:
    """Queue a notification in the outbox (with its audit row), then send it. Both steps are
    idempotent on `key`; a retry or a replay after a crash sends nothing twice."""
    if not recipients:
        return
    await workflow.execute_activity_method(
        CommonActivities.queue_notification,
        NotifyInput(idempotency_key=key, partner_id=partner_id, journey=journey, template=template,
                    recipients=recipients, context=context or {}, audit_action=audit_action),
        **activity_options(),
    )
    await workflow.execute_activity_method(
        CommonActivities.send_notifications, SendInput(idempotency_key=key), **activity_options()
    )
