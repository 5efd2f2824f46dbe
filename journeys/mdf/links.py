"""MDF's kind of one-click link (its manifest's `link_kinds`): the first approval level approves or
rejects a request or a claim from the email (api/links.py reads, checks and records it). A link is
bound to the approval level (index, 0: the first level), the round (the request's or claim's
submission number) and the amount it was issued for: the journey refuses it anywhere else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.journey import LinkKind
from domain.links import SCOPE, Claims
from journeys.mdf.models import MdfRequest

SALT = "camlights.mdf-decision"  # frozen: the links in emails already sent are signed with it


@dataclass(frozen=True)
class MdfLinkClaims(Claims):
    """An MDF decision ("request:approve", "claim:reject"...) on a request, at a level, round and amount."""

    ENTITY = "request_id"
    SCOPE = SCOPE  # level, round, amount_minor
    request_id: str
    decision: str
    approver: str
    jti: str
    expires_at: datetime
    level: int | None = None  # the approval level's index the link decides (links: the first only)
    round: int | None = None  # the submission (request or claim round) it was issued for
    amount_minor: int | None = None  # the amount decided on when it was issued

    @property
    def scoped(self) -> bool:
        """Bound to a level, a round and an amount (every link issued since these were added)."""
        return self.level is not None and self.round is not None and self.amount_minor is not None


DECISION: LinkKind[MdfLinkClaims] = LinkKind(salt=SALT, claims=MdfLinkClaims, entity=MdfRequest, path="/mdf/links")
