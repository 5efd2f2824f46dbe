"""The lead's kind of one-click link (its manifest's `link_kinds`): the partner accepts or declines
an offer from the email (api/links.py reads, checks and records it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.journey import LinkKind
from domain.links import Claims
from journeys.leads.models import Lead

SALT = "camlights.lead-offer"  # a lead link never works as a deal or MDF link


@dataclass(frozen=True)
class LeadLinkClaims(Claims):
    """An answer to an offer: the lead, the answer (accept / decline), the partner answering."""

    ENTITY = "lead_id"
    lead_id: str
    decision: str
    approver: str  # "partner:<id>"
    jti: str
    expires_at: datetime


OFFER: LinkKind[LeadLinkClaims] = LinkKind(salt=SALT, claims=LeadLinkClaims, entity=Lead, path="/leads/links")
