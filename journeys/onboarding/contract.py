"""What other journeys and the platform may use of the onboarding journey: how to tell it a
milestone is done (its signal, named here once). Imported by other journeys' workflows, so it stays
pure: no database, no I/O."""

from __future__ import annotations

from journeys.onboarding.domain import JOURNEY, MARK_MILESTONE, MilestoneDone, milestone_done

FIRST_DEAL = "first_deal"  # the milestone the deal journey reports at a partner's first registration
FIRST_CERTIFICATION = "first_certification"  # the one the cert journey reports at a first certification
PORTAL_ACCESS = "portal_access"  # the one the partner portal reports at a partner user's first sign-in

__all__ = [
    "FIRST_CERTIFICATION",
    "FIRST_DEAL",
    "PORTAL_ACCESS",
    "JOURNEY",
    "MARK_MILESTONE",
    "MilestoneDone",
    "milestone_done",
]
