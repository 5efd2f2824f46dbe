"""The lead journey's webhook events (`lead.*`): published on the stream of the partner concerned
(a lead not offered to anyone has no partner stream: `lead.created` and `lead.unplaced` are not
published)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


EVENTS = {
    "lead.offered": "a lead was offered to the partner (sequential or in a pool)",
    "lead.accepted": "the partner accepted a lead; its conversion window started",
    "lead.declined": "the partner declined a lead (with a reason)",
    "lead.expired": "an offer expired unanswered (the deadline counts business hours)",
    "lead.returned": "the partner handed an accepted lead back (with a reason)",
    "lead.converted": "a deal was registered for the accepted lead",
}
