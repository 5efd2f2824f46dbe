"""The catalog of events CAM Lights publishes to webhook subscribers: one entry per event type,
each with a version and the pydantic model of its `data`.

A journey declares its events in `journeys/<name>/events.py` (`EVENTS`, one `EventSpec` per type,
named `<its prefix>.<what happened>`; its manifest's `events`) and publishes them with
`JourneyKit.emit(type, data)`; the platform's own events are below. The catalog is assembled when
this module is imported (domain/installed.py): adding a journey adds no line here. A change that
breaks a payload is a new version of the type (a new model, `version + 1`); fields may be added
to a version without breaking receivers.

The body a subscriber receives (Standard Webhooks: `type`, `timestamp`, `data`):
`{"type": "deal.approved", "version": 1, "timestamp": "<when it happened>", "data": {...}}`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from domain import installed
from domain.webhooks import EventSpec

__all__ = [
    "CATALOG",
    "PLATFORM_EVENTS",
    "WILDCARD",
    "EventSpec",
    "HandoverCompleted",
    "TierChanged",
    "body",
    "catalog",
    "spec",
]


class TierChanged(BaseModel):
    """partner.tier_changed: ops moved the partner to another tier (its journeys follow)."""

    partner_id: str
    partner_name: str
    from_tier: str
    to_tier: str
    cam_id: str | None = None
    by: str


class HandoverCompleted(BaseModel):
    """cam.handover_completed: the partner was handed over to another CAM (POST /cams/{id}/handover);
    its running journeys follow the new CAM, which received the handover pack."""

    handover_id: str
    partner_id: str
    from_cam_id: str
    to_cam_id: str
    journeys_moved: int
    by: str


# The platform's own events (the journeys' ones are in their journeys/<name>/events.py).
PLATFORM_EVENTS: dict[str, EventSpec] = {
    "partner.tier_changed": EventSpec(1, TierChanged, "the partner's tier changed (its running journeys follow)"),
    "cam.handover_completed": EventSpec(
        1, HandoverCompleted, "the partner was handed over to another CAM (its running journeys follow)"
    ),
}


def _prefix(event_type: str) -> str:
    return event_type.split(".", 1)[0]


def catalog(*groups: Mapping[str, EventSpec]) -> dict[str, EventSpec]:
    """One catalog of these groups of event types, grouped by prefix (`partner`, `deal`...) in
    the order each prefix first appears; an event type declared twice is refused."""
    entries = [entry for group in groups for entry in group.items()]
    names = [name for name, _ in entries]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"event types declared twice: {', '.join(twice)}")
    order: dict[str, int] = {}
    for name in names:
        order.setdefault(_prefix(name), len(order))
    return dict(sorted(entries, key=lambda entry: order[_prefix(entry[0])]))


CATALOG: dict[str, EventSpec] = catalog(*(module.EVENTS for _, module in installed.parts("events")), PLATFORM_EVENTS)

WILDCARD = "*"  # a subscription to every event type, present and future


def spec(event_type: str) -> EventSpec:
    try:
        return CATALOG[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(sorted(CATALOG))}") from None


def body(event_type: str, version: int, occurred_at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body subscribers receive (what is signed)."""
    return {"type": event_type, "version": version, "timestamp": occurred_at.isoformat(), "data": data}
