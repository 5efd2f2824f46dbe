"""The certification journey's webhook events (certification.*); domain/events.py adds them to the
catalog."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.webhooks import EventSpec


class CertEvent(BaseModel):
    """certification.*: the certification and whether it gates deal registration now."""

    certification_id: str
    partner_id: str
    category: str
    expires_at: datetime | None = None
    state: str


EVENTS: dict[str, EventSpec] = {
    "certification.lapsed": EventSpec(1, CertEvent, "a certification lapsed: deal registration in it is restricted"),
    "certification.renewed": EventSpec(1, CertEvent, "a certification was renewed: its entitlements are restored"),
}
