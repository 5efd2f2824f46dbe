"""The deal registration journey's webhook events (deal.*); domain/events.py adds them to the catalog."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.webhooks import EventSpec


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


EVENTS: dict[str, EventSpec] = {
    "deal.registered": EventSpec(1, DealEvent, "a deal registration was submitted (pending approval or in review)"),
    "deal.approved": EventSpec(1, DealEvent, "a deal registration was approved; its protection window started"),
    "deal.rejected": EventSpec(1, DealEvent, "a deal registration was rejected"),
    "deal.expiring": EventSpec(1, DealEvent, "a deal's protection ends soon (one event per policy reminder)"),
    "deal.extended": EventSpec(1, DealEvent, "a deal's protection was extended"),
    "deal.won": EventSpec(1, DealEvent, "the deal closed won"),
    "deal.lost": EventSpec(1, DealEvent, "the deal closed lost"),
    "deal.expired": EventSpec(1, DealEvent, "a deal's protection window ended"),
}
