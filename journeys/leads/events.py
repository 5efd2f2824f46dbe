"""The lead journey's webhook events (`lead.*`): published on the stream of the partner concerned
(a lead not offered to anyone has no partner stream: `lead.created` and `lead.unplaced` are not
published). domain/events.py adds them to the catalog."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.webhooks import EventSpec


class LeadEvent(BaseModel):
    """lead.*: the lead and the partner concerned, after the change."""

    lead_id: str
    partner_id: str
    state: str = Field(description="the lead's state: offered, accepted, converted, lapsed, ...")
    company: str
    country: str
    product_category: str
    source: str
    offer_no: int | None = None
    by: str | None = Field(None, description="who made the change: partner:<id>, ops:<key>, system")
    reason: str | None = None
    deal_id: str | None = None


EVENTS: dict[str, EventSpec] = {
    "lead.offered": EventSpec(1, LeadEvent, "a lead was offered to the partner (sequential or in a pool)"),
    "lead.accepted": EventSpec(1, LeadEvent, "the partner accepted a lead; its conversion window started"),
    "lead.declined": EventSpec(1, LeadEvent, "the partner declined a lead (with a reason)"),
    "lead.expired": EventSpec(1, LeadEvent, "an offer expired unanswered (the deadline counts business hours)"),
    "lead.returned": EventSpec(1, LeadEvent, "the partner handed an accepted lead back (with a reason)"),
    "lead.converted": EventSpec(1, LeadEvent, "a deal was registered for the accepted lead"),
}
