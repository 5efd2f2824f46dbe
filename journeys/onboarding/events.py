"""The onboarding journey's webhook events (partner.*: its partner and the state it reached);
domain/events.py adds them to the catalog."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.webhooks import EventSpec


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


# partner.at_risk is also published by the health journey's early warning (source "health", with
# its score, reason and explanation).
EVENTS: dict[str, EventSpec] = {
    "partner.enrolled": EventSpec(1, PartnerEvent, "a partner was enrolled; its onboarding started"),
    "partner.activated": EventSpec(1, PartnerEvent, "the partner completed its required onboarding milestones"),
    "partner.at_risk": EventSpec(
        1, PartnerEvent, "the onboarding plan ended with required milestones open, or health opened an early warning"
    ),
}
