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

<<<<<<< HEAD
__all__ = ["CATALOG", "PLATFORM_EVENTS", "WILDCARD", "EventSpec", "TierChanged", "body", "catalog", "spec"]
=======

class PartnerEvent(BaseModel):
    """partner.*: the partner, its coverage and the state its onboarding reached."""

    partner_id: str
    partner_name: str
    tier: str
    cam_id: str | None = None
    state: str = Field(description="the onboarding state: in_progress, activated, at_risk (health: its band)")
    source: str = Field("onboarding", description="partner.at_risk: onboarding (the plan ended) or health")
    score: int | None = Field(None, description="health: the score that opened the early-warning episode")
    reason: str | None = Field(None, description="health: why (a band change or a drop)")
    explanation: list[str] = Field(default_factory=list, description="health: every contribution, worst first")


class HealthChanged(BaseModel):
    """partner.health_changed: a partner's health score moved, with what moved it."""

    partner_id: str
    score: int
    band: str = Field(description="healthy, watch, at_risk")
    previous_band: str | None = None
    changes: list[str] = Field(description='e.g. "\u221212: certification Network Associate lapsed on 2027-03-02"')
>>>>>>> h-health


class TierChanged(BaseModel):
    """partner.tier_changed: ops moved the partner to another tier (its journeys follow)."""

    partner_id: str
    partner_name: str
    from_tier: str
    to_tier: str
    cam_id: str | None = None
    by: str


<<<<<<< HEAD
# The platform's own events (the journeys' ones are in their journeys/<name>/events.py).
PLATFORM_EVENTS: dict[str, EventSpec] = {
=======
class DealEvent(BaseModel):
    """deal.*: the deal as it stands after the change (money in minor units of an ISO 4217 code)."""

    deal_id: str
    partner_id: str
    state: str
    stage: str
    customer_name: str
    product_category: str
    amount_minor: int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    by: str | None = Field(None, description="who made the change: ops:<key>, cam:<id>, partner:<id>, system")
    reason: str | None = None
    protected_until: datetime | None = None
    days_left: float | None = Field(None, description="deal.expiring: policy days until protection ends")


class CertEvent(BaseModel):
    """certification.*: the certification and whether it gates deal registration now."""

    certification_id: str
    partner_id: str
    category: str
    expires_at: datetime | None = None
    state: str


class MdfEvent(BaseModel):
    """mdf.*: an MDF request as it stands after the change (money in minor units of the program currency)."""

    request_id: str
    partner_id: str
    state: str
    activity_type: str
    title: str
    period: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount_minor: int
    approved_minor: int | None = None
    claim_minor: int | None = None
    approved_claim_minor: int | None = None
    paid_minor: int = 0
    by: str | None = Field(None, description="who made the change: ops:<key>, cam:<id>, partner:<id>, system")
    reason: str | None = None


@dataclass(frozen=True)
class EventSpec:
    version: int
    data: type[BaseModel]
    description: str


CATALOG: dict[str, EventSpec] = {
    "partner.enrolled": EventSpec(1, PartnerEvent, "a partner was enrolled; its onboarding started"),
    "partner.activated": EventSpec(1, PartnerEvent, "the partner completed its required onboarding milestones"),
    "partner.at_risk": EventSpec(
        1, PartnerEvent, "the onboarding plan ended with required milestones open, or health opened an early warning"
    ),
    "partner.health_changed": EventSpec(1, HealthChanged, "a partner's health score changed (with its reasons)"),
>>>>>>> h-health
    "partner.tier_changed": EventSpec(1, TierChanged, "the partner's tier changed (its running journeys follow)"),
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
