"""The market development funds journey's webhook events (mdf.*); domain/events.py adds them to the
catalog."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.webhooks import EventSpec


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


EVENTS: dict[str, EventSpec] = {
    "mdf.requested": EventSpec(1, MdfEvent, "an MDF request was submitted; its amount is reserved"),
    "mdf.approved": EventSpec(1, MdfEvent, "an MDF request was approved by every level it needs"),
    "mdf.rejected": EventSpec(1, MdfEvent, "an MDF request was rejected; its funds are released"),
    "mdf.claim_approved": EventSpec(1, MdfEvent, "an MDF claim was approved (perhaps in part)"),
    "mdf.claim_denied": EventSpec(1, MdfEvent, "an MDF claim was denied; its funds are released"),
    "mdf.payment_recorded": EventSpec(1, MdfEvent, "ops recorded a payment of an approved MDF claim"),
    "mdf.paid": EventSpec(1, MdfEvent, "an MDF claim was paid in full; the journey ended"),
    "mdf.expired": EventSpec(1, MdfEvent, "an MDF request expired (not started, or not claimed in time)"),
}
