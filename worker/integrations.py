"""The worker's part of the integrations (not journeys, so not in the journey registry): the
webhook delivery streams and the activities that publish and deliver events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.webhooks import WebhookActivities
from core.registry import Resources
from core.sealing import unseal
from workflows.webhooks import WebhookDeliveryWorkflow


def integration_workflows() -> list[type]:
    return [WebhookDeliveryWorkflow]


def integration_activities(resources: Resources) -> list[Callable[..., Any]]:
    ring = resources.settings.key_ring()
    hooks = WebhookActivities(resources.sessionmaker, unseal=lambda stored: unseal(ring, stored))
    return [hooks.publish, hooks.next_delivery, hooks.deliver, hooks.give_up]
