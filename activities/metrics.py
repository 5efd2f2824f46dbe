"""Our metrics from inside activities, through the Temporal SDK's metric meter: the worker exports
them with the SDK's own (runtime) metrics on its Prometheus endpoint (`WORKER_METRICS_PORT`).
Outside an activity (a unit test calling a method directly) they are not recorded."""

from __future__ import annotations

from temporalio import activity


def _meter():
    try:
        return activity.metric_meter()
    except RuntimeError:  # not in an activity
        return None


def webhook_delivery(outcome: str, seconds: float | None = None) -> None:
    meter = _meter()
    if meter is None:
        return
    meter.create_counter(
        "camlights_webhook_deliveries", "webhook delivery attempts by outcome (delivered, http_5xx, error, failed...)"
    ).add(1, {"outcome": outcome})
    if seconds is not None:
        meter.create_histogram_float("camlights_webhook_delivery_seconds", "time of one delivery attempt", "s").record(
            seconds, {"outcome": outcome}
        )


def email(journey: str, template: str, outcome: str) -> None:
    """One email `sent`, or refused for good (`failed`)."""
    meter = _meter()
    if meter is None:
        return
    meter.create_counter("camlights_emails", "emails sent and refused for good, by journey and template").add(
        1, {"journey": journey, "template": template, "outcome": outcome}
    )
