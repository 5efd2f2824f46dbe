"""The deal's kind of one-click link (its manifest's `link_kinds`): an approver approves or rejects
a deal registration from the email (api/links.py reads, checks and records it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.journey import LinkKind
from domain.links import Claims
from journeys.deal.models import Deal

SALT = "camlights.deal-decision"  # frozen: the links in emails already sent are signed with it


@dataclass(frozen=True)
class DealLinkClaims(Claims):
    """A deal decision: the deal, the decision, its approver."""

    ENTITY = "deal_id"
    deal_id: str
    decision: str
    approver: str
    jti: str
    expires_at: datetime


DECISION: LinkKind[DealLinkClaims] = LinkKind(salt=SALT, claims=DealLinkClaims, entity=Deal, path="/deals/links")
