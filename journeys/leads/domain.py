"""Contracts and rules of the lead distribution journey (`leads-{lead_id}`): its states and
messages, and routing, pure: the rules of the policy evaluated in order over the candidates,
then the rule's picker. The pick is reproducible (a weighted draw is seeded by the lead and the
offer number) and carries its reasons."""

from __future__ import annotations

import random
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from journeys.leads.policy import LeadsPolicy, OfferMode, Picker, RoutingRule

JOURNEY = "leads"

# Messages (besides the shared PROGRESS).
RESPOND = "respond"  # update: a partner accepts or declines its offer (or hands an accepted lead back)
RECALL = "recall"  # update: ops recall the lead (to a named partner, or to wait for a human)
DEAL_REGISTERED = "deal_registered"  # signal: the partner registered a deal for the accepted lead


class LeadActivity:
    """Activity names of this journey."""

    OFFER = "leads.offer"
    RECORD_STATE = "leads.record_state"
    RECORD_OFFER = "leads.record_offer"
    SEND_OFFER = "leads.send_offer"


class LeadState(StrEnum):
    new = "new"
    offered = "offered"
    accepted = "accepted"
    converted = "converted"
    unplaced = "unplaced"  # waits for a human: no candidate, a required rule unmatched, or max offers
    lapsed = "lapsed"  # accepted, no deal within the conversion window


class OfferState(StrEnum):
    live = "live"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    withdrawn = "withdrawn"  # another partner of the pool accepted, or ops recalled the lead
    returned = "returned"  # accepted, then handed back


class Response(StrEnum):
    accept = "accept"
    decline = "decline"
    hand_back = "hand_back"


OPEN_STATES = (LeadState.new, LeadState.offered, LeadState.accepted, LeadState.unplaced)


# ------------------------------------------------------------------ routing (pure)


class LeadFacts(BaseModel):
    lead_id: str
    country: str
    region: str = ""
    product_category: str


class Candidate(BaseModel):
    """A partner as routing sees it: where and what it serves, its lead preferences and load."""

    partner_id: str
    tier: str
    country: str
    countries: list[str] = Field(default_factory=list)  # territories; empty: its own country
    regions: list[str] = Field(default_factory=list)  # empty: any region
    categories: list[str] = Field(default_factory=list)  # empty: any category
    accepting: bool = True
    capacity: int = 10  # open offers it takes at once
    open_offers: int = 0
    performance: float = 1.0  # acceptance-rate factor from its history (1: no history)
    last_offered_at: datetime | None = None
    last_accepted_at: datetime | None = None


class Scored(BaseModel):
    partner_id: str
    score: float


class Pick(BaseModel):
    """The outcome of routing: the partners offered (none: unplaced) and why."""

    rule: str | None
    mode: OfferMode = OfferMode.sequential
    partners: list[str] = Field(default_factory=list)
    candidates: list[Scored] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)

    @property
    def placed(self) -> bool:
        return bool(self.partners)


def applies(rule: RoutingRule, lead: LeadFacts) -> bool:
    return (
        (not rule.countries or lead.country in rule.countries)
        and (not rule.regions or lead.region in rule.regions)
        and (not rule.categories or lead.product_category in rule.categories)
    )


def serves(c: Candidate, lead: LeadFacts) -> bool:
    return (
        lead.country in (c.countries or [c.country])
        and (not c.regions or lead.region in c.regions)
        and (not c.categories or lead.product_category in c.categories)
    )


def eligible(rule: RoutingRule, lead: LeadFacts, candidates: list[Candidate], excluded: set[str]) -> list[Candidate]:
    """The rule's candidates: serving the lead, of its tiers, accepting leads, under capacity, and
    never a partner the lead was offered to before (declined, expired, handed back)."""
    tiers = {t.value for t in rule.tiers}
    return [
        c
        for c in candidates
        if c.partner_id not in excluded
        and c.accepting
        and c.open_offers < c.capacity
        and (not tiers or c.tier in tiers)
        and serves(c, lead)
    ]


def weight(c: Candidate, policy: LeadsPolicy) -> float:
    tier_weights = {t.value: w for t, w in policy.tier_weights.items()}
    return tier_weights.get(c.tier, 1.0) * c.performance


def _idle_since(at: datetime | None) -> tuple[int, float]:
    return (0, 0.0) if at is None else (1, at.timestamp())  # never: the longest idle


def pick(
    pool: list[Candidate], picker: Picker, k: int, policy: LeadsPolicy, seed: str
) -> tuple[list[str], list[Scored]]:
    """Up to `k` distinct partners of `pool` by `picker`, and every candidate's score."""
    ordered = sorted(pool, key=lambda c: c.partner_id)
    if picker == Picker.weighted:
        scored = [Scored(partner_id=c.partner_id, score=round(weight(c, policy), 6)) for c in ordered]
        rng = random.Random(seed)
        left, chosen = list(scored), list[str]()
        while left and len(chosen) < k:
            one = rng.choices(left, weights=[max(s.score, 1e-9) for s in left])[0]
            chosen.append(one.partner_id)
            left.remove(one)
        return chosen, scored

    def since(c: Candidate) -> tuple[int, float]:
        return _idle_since(c.last_offered_at if picker == Picker.round_robin else c.last_accepted_at)

    ranked = sorted(ordered, key=since)
    scored = [Scored(partner_id=c.partner_id, score=float(-i)) for i, c in enumerate(ranked)]
    return [c.partner_id for c in ranked[:k]], scored


def route(lead: LeadFacts, candidates: list[Candidate], policy: LeadsPolicy, excluded: set[str], offer_no: int) -> Pick:
    """The rules in order: the first that applies and has candidates picks; a required rule that
    applies without candidates stops routing (the lead waits for a human)."""
    reasons: list[str] = []
    for rule in policy.rules:
        if not applies(rule, lead):
            reasons.append(f"rule {rule.name}: does not apply to this lead")
            continue
        pool = eligible(rule, lead, candidates, excluded)
        if not pool:
            if rule.required:
                reasons.append(f"rule {rule.name} (required): no eligible partner; the lead waits for a human")
                return Pick(rule=rule.name, reasons=reasons)
            reasons.append(f"rule {rule.name} (optional): no eligible partner, skipped")
            continue
        k = rule.pool_size if rule.mode == OfferMode.pool else 1
        chosen, scored = pick(pool, rule.picker, k, policy, f"{lead.lead_id}:{offer_no}")
        reasons.append(
            f"rule {rule.name}: {len(pool)} eligible partner(s), {rule.picker.value} picked {', '.join(chosen)}"
        )
        return Pick(rule=rule.name, mode=rule.mode, partners=chosen, candidates=scored, reasons=reasons)
    reasons.append("no rule placed the lead; it waits for a human")
    return Pick(rule=None, reasons=reasons)


# ------------------------------------------------------------------ workflow contracts


class LeadInput(BaseModel):
    lead_id: str
    company: str
    country: str
    region: str = ""
    product_category: str
    value_minor: int | None = None
    currency: str | None = None
    source: str = ""
    protected_partner_id: str | None = None  # a partner's approved deal protects the customer: offered first
    policy_version: int | None = None


class OfferedTo(BaseModel):
    partner_id: str
    partner_name: str
    offer_no: int
    expires_at: datetime
    remind_at: datetime | None = None


class OfferInput(BaseModel):
    """Route the lead and write its offer(s) (idempotent on the key): the partners already offered
    are excluded; `to_partner_id` offers to that partner without routing (ops' reassignment, or a
    protecting deal's partner)."""

    idempotency_key: str
    lead_id: str
    offer_no: int  # the first offer number this step may use
    excluded: list[str]
    to_partner_id: str | None = None
    policy_version: int
    reason: str = ""
    at: datetime  # the journey's time of the offer (deadlines count from it)
    limit: int = 1  # partners this step may offer at most (the policy's maximum less those offered)


class OfferResult(BaseModel):
    pick: Pick
    offers: list[OfferedTo]


class OfferRecord(BaseModel):
    """An offer's outcome (accepted, declined, expired, withdrawn, returned), with its audit row."""

    idempotency_key: str
    lead_id: str
    partner_id: str
    offer_no: int
    state: OfferState
    by: str
    reason_code: str | None = None
    reason: str | None = None
    at: datetime


class SendOfferInput(BaseModel):
    idempotency_key: str
    lead_id: str
    partner_id: str
    offer_no: int
    template: str  # offer | offer_reminder | withdrawn | nudge
    expires_at: datetime | None = None


class LeadStateInput(BaseModel):
    idempotency_key: str
    lead_id: str
    state: LeadState
    by: str
    partner_id: str | None = None
    deal_id: str | None = None
    reason: str | None = None
    at: datetime


class OfferResponse(BaseModel):
    """Update: the partner answers its offer (accept / decline with a reason), or hands back an
    accepted lead (with a reason)."""

    partner_id: str
    response: Response
    by: str
    reason_code: str | None = Field(None, max_length=40)
    reason: str = Field("", max_length=1000)


class RecallRequest(BaseModel):
    """Update (ops): withdraw the live offers or the acceptance; offer to `to_partner_id`, or let
    the lead wait for a human."""

    by: str
    reason: str = Field(min_length=1, max_length=1000)
    to_partner_id: str | None = None


class DealRegistered(BaseModel):
    deal_id: str
    partner_id: str
    by: str


class ResponseResult(BaseModel):
    lead_id: str
    state: LeadState
    partner_id: str | None = None


class LeadProgress(BaseModel):
    lead_id: str
    state: LeadState
    policy_version: int
    partner_id: str | None = None  # the partner that accepted it
    live_offers: list[OfferedTo] = Field(default_factory=list)
    offered: list[str] = Field(default_factory=list)  # every partner offered, in order
    path: list[str] = Field(default_factory=list)  # routing reasons, in order
    deal_id: str | None = None


class LeadResult(BaseModel):
    lead_id: str
    state: LeadState
    partner_id: str | None = None
    deal_id: str | None = None


def describe(inp: LeadInput) -> tuple[str, str]:
    """The journey's static summary and details in the Temporal Web UI (encrypted by the codec)."""
    where = f"{inp.country}{'/' + inp.region if inp.region else ''}"
    return (
        f"Lead: {inp.company} — {inp.product_category}, {where}",
        f"**Lead** {inp.lead_id}  \n**Source** {inp.source or 'n/a'}  \n**Policy version** "
        f"{inp.policy_version or 'current at start'}",
    )
