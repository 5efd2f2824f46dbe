"""Contracts of the deal registration journey (`deal-{deal_id}`)."""
from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.journeys import Coverage


class DealState(StrEnum):
    pending_approval = "pending_approval"
    conflict_review = "conflict_review"
    approved = "approved"
    rejected = "rejected"
    won = "won"
    lost = "lost"
    expired = "expired"


OPEN_STATES = (DealState.pending_approval, DealState.conflict_review, DealState.approved)
AWAITING_DECISION = (DealState.pending_approval, DealState.conflict_review)


class DealStage(StrEnum):
    qualification = "qualification"
    discovery = "discovery"
    proposal = "proposal"
    negotiation = "negotiation"
    closed_won = "closed_won"
    closed_lost = "closed_lost"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


# ------------------------------------------------------------------ customer matching (pure)

_LEGAL = {
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "llp", "lp", "ltd", "limited",
    "plc", "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "pty",
    "kk", "pte", "sl", "the",
}


def normalize_company_name(name: str) -> str:
    """'The ACME, Inc.' -> 'acme'; 'Müller GmbH & Co. KG' -> 'müller'."""
    words = re.sub(r"[^\w\s]", " ", name.casefold().replace("&", " ")).split()
    kept = [w for w in words if w not in _LEGAL]
    return " ".join(kept or words)


def normalize_domain(domain: str) -> str:
    """'HTTPS://WWW.Shop.Acme.co.uk/x' -> 'acme.co.uk' (the registrable domain)."""
    d = domain.strip().lower()
    d = re.sub(r"^[a-z]+://", "", d).split("/")[0].split(":")[0].rstrip(".")
    d = d.removeprefix("www.")
    return _psl().privatesuffix(d) or d


_PSL = None


def _psl():
    global _PSL
    if _PSL is None:
        from publicsuffixlist import PublicSuffixList

        _PSL = PublicSuffixList()
    return _PSL


# ------------------------------------------------------------------ workflow contracts


class DealInput(BaseModel):
    deal_id: str
    partner_id: str
    partner_name: str
    coverage: Coverage
    customer_name: str
    product_category: str
    amount_minor: int
    currency: str
    stage: DealStage
    state: DealState  # pending_approval or conflict_review, decided by the API's conflict check
    conflict_with: str | None = None
    hold_reason: str | None = None  # set when policy holds the deal for review (e.g. lapsed certification)
    policy_version: int | None = None


class DealDecision(BaseModel):
    """Update: a CAM's (or ops') decision on a pending deal."""

    decision: Decision
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field(description="'cam:<id>' or 'ops:<key id>'")


class DecisionResult(BaseModel):
    deal_id: str
    state: DealState
    decided_by: str
    protected_until: datetime | None = None


class ExtensionRequest(BaseModel):
    """Update: the partner asks for more protection time."""

    days: float = Field(gt=0)
    reason: str = Field("", max_length=1000)
    by: str


class ExtensionDecision(BaseModel):
    """Update: the CAM (or ops) decides on a requested extension (CAM tiers)."""

    decision: Decision
    by: str
    reason: str = Field("", max_length=1000)


class ExtensionResult(BaseModel):
    status: str  # granted | awaiting_cam | rejected
    extensions_used: int
    protected_until: datetime | None


class StageChange(BaseModel):
    """Signal: the deal moved to another stage (closed_won / closed_lost end the journey)."""

    stage: DealStage
    by: str


class DealProgress(BaseModel):
    deal_id: str
    partner_id: str
    state: DealState
    stage: DealStage
    policy_version: int
    submitted_at: datetime
    decided_by: str | None = None
    decision_reason: str | None = None
    protected_until: datetime | None = None
    extensions_used: int = 0
    pending_extension_days: float | None = None
    stage_since: datetime
    stalled: bool = False


class DealResult(BaseModel):
    deal_id: str
    state: DealState
    stage: DealStage


# ------------------------------------------------------------------ activity contracts


class DealStateInput(BaseModel):
    idempotency_key: str
    deal_id: str
    state: DealState
    by: str
    reason: str | None = None
    protected_until: datetime | None = None
    extensions_used: int | None = None
    at: datetime


class DealStageInput(BaseModel):
    idempotency_key: str
    deal_id: str
    stage: DealStage
    by: str
    at: datetime


class ApprovalRequestInput(BaseModel):
    """Queue the approval request with signed one-click links, one set per approver."""

    idempotency_key: str
    deal_id: str
    approver: str  # "cam" or "ops"
    template: str
    link_valid_until: datetime
    context: dict = Field(default_factory=dict)

