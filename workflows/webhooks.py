"""Webhook delivery stream: `webhooks-{subscription id}-{partner id}`.

One stream per subscription and partner delivers that partner's events one at a time, oldest
first, so a subscriber sees a partner's events in the order they happened. Each delivery is
retried with doubling intervals for the policy's `webhooks.retry_hours`, then marked failed (ops
can replay it) and the stream moves on. Idle, the stream waits for a `wake` signal (sent with
every new event or replay); it continues as new when its history grows."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.journeys import LOAD_POLICY, LoadPolicyInput
    from domain.policy import VersionedPolicy, WebhookPolicy
    from domain.webhooks import (
        DELIVERY_WORKFLOW,
        WAKE,
        DeliverInput,
        DeliverResult,
        GiveUpInput,
        NextDelivery,
        StreamInput,
        Wake,
        WebhookActivity,
    )

STEP_TIMEOUT = timedelta(seconds=15)  # the database steps (not the delivery: its time is in the policy)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
DELIVERIES_PER_RUN = 200
REQUEST_MARGIN = 5  # seconds an attempt may take beyond the policy's request timeout (activities/webhooks.py)


@workflow.defn(name=DELIVERY_WORKFLOW)
class WebhookDeliveryWorkflow:
    @workflow.init
    def __init__(self, inp: StreamInput) -> None:
        self._woken = False  # a wake signal arrived since the stream last looked for work

    @workflow.signal(name=WAKE)
    def wake(self, _: Wake) -> None:
        self._woken = True

    @workflow.run
    async def run(self, inp: StreamInput) -> None:
        snap = await workflow.execute_activity(
            LOAD_POLICY,
            LoadPolicyInput(),
            result_type=VersionedPolicy,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
            summary="read the webhook retry policy",
        )
        rules = snap.policy.webhooks
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=rules.first_retry_seconds),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=max(rules.max_retry_seconds, rules.first_retry_seconds)),
            non_retryable_error_types=["DestinationRefused", "DeliveryGone"],
        )
        delivered = 0
        while True:
            if delivered >= DELIVERIES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp)  # the next run reads what is still pending
            self._woken = False
            nxt = await workflow.execute_activity(
                WebhookActivity.NEXT,
                inp,
                result_type=NextDelivery,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
                summary="find the pending deliveries, oldest first",
            )
            if not nxt.delivery_ids:
                workflow.set_current_details("idle: waiting for the next event")
                await workflow.wait_condition(lambda: self._woken)
                continue
            for delivery_id in nxt.delivery_ids:
                await self._deliver(delivery_id, rules, retry)
                delivered += 1

    async def _deliver(self, delivery_id: int, rules: WebhookPolicy, retry: RetryPolicy) -> None:
        workflow.set_current_details(f"delivering {delivery_id}")
        try:
            await workflow.execute_activity(
                WebhookActivity.DELIVER,
                DeliverInput(delivery_id=delivery_id),
                result_type=DeliverResult,
                start_to_close_timeout=timedelta(seconds=rules.timeout_seconds + REQUEST_MARGIN),
                schedule_to_close_timeout=timedelta(hours=rules.retry_hours),
                retry_policy=retry,
                summary=f"deliver {delivery_id}",
            )
        except ActivityError as err:
            cause = err.cause or err
            await workflow.execute_activity(
                WebhookActivity.GIVE_UP,
                GiveUpInput(delivery_id=delivery_id, error=str(cause)[:2000]),
                result_type=DeliverResult,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
                summary=f"mark {delivery_id} failed",
            )
