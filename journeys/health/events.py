"""Partner health's webhook events (partner.health*); domain/events.py adds them to the catalog.
Its early warning publishes `partner.at_risk`, the onboarding journey's event (its payload,
journeys.onboarding.contract.PartnerEvent, carries health's optional fields)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.webhooks import EventSpec


class HealthChanged(BaseModel):
    """partner.health_changed: a partner's health score moved, with what moved it."""

    partner_id: str
    score: int
    band: str = Field(description="healthy, watch, at_risk")
    previous_band: str | None = None
    changes: list[str] = Field(description='e.g. "\u221212: certification Network Associate lapsed on 2027-03-02"')


EVENTS: dict[str, EventSpec] = {
    "partner.health_changed": EventSpec(1, HealthChanged, "a partner's health score changed (with its reasons)"),
}
