"""The worker's platform workflows (not journeys, so not in the journey registry): the webhook
delivery streams and the activities that publish and deliver events, and the CAM handover
(workflows/handover.py) with its activities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.handover import HandoverActivities
from activities.webhooks import WebhookActivities
from core.registry import FOLLOWING, HANDOVER_ITEMS, Resources, refreshes
from core.sealing import unseal
from workflows.handover import HandoverWorkflow
from workflows.webhooks import WebhookDeliveryWorkflow


def integration_workflows() -> list[type]:
    return [WebhookDeliveryWorkflow, HandoverWorkflow]


def integration_activities(resources: Resources) -> list[Callable[..., Any]]:
    ring = resources.settings.key_ring()
    hooks = WebhookActivities(resources.sessionmaker, unseal=lambda stored: unseal(ring, stored), refreshes=refreshes())
    handover = HandoverActivities(
        resources.sessionmaker,
        base_url=resources.settings.public_base_url,
        link_secret=resources.settings.link_secret,
        following=resources.following or FOLLOWING,
        items=resources.handover_items or HANDOVER_ITEMS,
    )
    return [
        hooks.publish,
        hooks.next_delivery,
        hooks.deliver,
        hooks.give_up,
        handover.move_partner,
        handover.queue_introduction,
        handover.queue_pack,
        handover.complete,
    ]
