"""The lead journey's webhook events (`lead.*`): an offer's events on the stream of the partner
concerned; `lead.created` and `lead.unplaced`, about no one partner, on the program's stream
(`domain.webhooks.PROGRAM_STREAM`). domain/events.py adds them to the catalog."""

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


class LeadRoutingEvent(BaseModel):
    """lead.created, lead.unplaced: the lead, on the program's stream (no partner concerned)."""

    lead_id: str
    state: str = Field(description="the lead's state: new (created) or unplaced")
    company: str
    country: str
    region: str
    product_category: str
    source: str
    by: str = Field(description="who made the change: ops:<key>, an integration's key, system")
    reason: str | None = Field(None, description="unplaced: why routing stopped (the last step of its path)")
    offered: list[str] = Field(default_factory=list, description="the partners offered the lead so far, in order")
    protected_partner_id: str | None = Field(
        None, description="created: the partner whose approved deal protects the customer (offered first)"
    )


EVENTS: dict[str, EventSpec] = {
    "lead.offered": EventSpec(1, LeadEvent, "a lead was offered to the partner (sequential or in a pool)"),
    "lead.accepted": EventSpec(1, LeadEvent, "the partner accepted a lead; its conversion window started"),
    "lead.declined": EventSpec(1, LeadEvent, "the partner declined a lead (with a reason)"),
    "lead.expired": EventSpec(1, LeadEvent, "an offer expired unanswered (the deadline counts business hours)"),
    "lead.returned": EventSpec(1, LeadEvent, "the partner handed an accepted lead back (with a reason)"),
    "lead.converted": EventSpec(1, LeadEvent, "a deal was registered for the accepted lead"),
    "lead.created": EventSpec(1, LeadRoutingEvent, "a lead came in (API, import or CRM); routing starts"),
    "lead.unplaced": EventSpec(
        1, LeadRoutingEvent, "no partner took the lead (no candidate, a required rule, or the maximum offers)"
    ),
}
