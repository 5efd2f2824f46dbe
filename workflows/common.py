"""Helpers every journey workflow uses: activity options and the two-step notification."""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.common import CommonActivities
    from domain.enums import Journey
    from domain.journeys import (
        NO_CAM,
        SA_CAM_ID,
        SA_JOURNEY,
        SA_JOURNEY_STATE,
        SA_PARTNER_ID,
        SA_TIER,
        Coverage,
        NotifyInput,
        SendInput,
    )
    from domain.onboarding import MilestoneDone

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
    await send_outbox(key)


async def send_outbox(key: str) -> None:
    """Send whatever the outbox holds for `key` (rows queued by any activity)."""
    await workflow.execute_activity_method(
        CommonActivities.send_notifications, SendInput(idempotency_key=key), **activity_options()
    )


def upsert_journey_attributes(partner_id: str, coverage: Coverage, journey: Journey, state: str) -> None:
    """The search attributes every journey carries, upserted as its state or coverage moves."""
    workflow.upsert_search_attributes([
        SA_PARTNER_ID.value_set(partner_id),
        SA_CAM_ID.value_set(coverage.cam_id or NO_CAM),
        SA_TIER.value_set(coverage.tier.value),
        SA_JOURNEY.value_set(journey.value),
        SA_JOURNEY_STATE.value_set(state),
    ])


async def mark_onboarding_milestone(partner_id: str, key: str) -> None:
    """Tell `onboarding-{partner_id}` a milestone is done (journeys talk only through signals by
    workflow id). Onboarding ignores repeats; a finished onboarding is not an error."""
    handle = workflow.get_external_workflow_handle(f"onboarding-{partner_id}")
    try:
        await handle.signal("mark_milestone", MilestoneDone(key=key, by=f"journey:{workflow.info().workflow_id}"))
    except FailureError:
        workflow.logger.info("onboarding of %s is not running; milestone %s not signalled", partner_id, key)
