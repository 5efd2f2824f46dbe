"""Contracts and rules of the lead distribution journey (`leads-{lead_id}`): its states and
messages, and routing, pure: the rules of the policy evaluated in order over the candidates,
then the rule's picker. The pick is reproducible (a weighted draw is seeded by the lead and the
offer number) and carries its reasons."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from datetime import datetime
from enum import StrEnum
from typing import cast

from pydantic import BaseModel, Field

from domain.webhooks import EventInput
from journeys.leads.policy import LeadsPolicy, OfferMode, Picker, RoutingRule

JOURNEY = "leads"

# Messages (besides the shared PROGRESS).
RESPOND = "respond"  # update: a partner accepts or declines its offer (or hands an accepted lead back)
RECALL = "recall"  # update: ops recall the lead (to a named partner, or to wait for a human)
DEAL_REGISTERED = "deal_registered"  # signal: the partner registered a deal for the accepted lead


class LeadActivity:
    """Activity names of this journey."""

    OFFER = "leads.offer"
    OFFER_WITH_STATE = "leads.offer_with_state"  # writes the offered state too (kit generation 9)
    RECORD_STATE = "leads.record_state"
    RECORD_OFFER = "leads.record_offer"
    SEND_OFFER = "leads.send_offer"
    NOTIFY_OFFER = "leads.notify_offer"  # queues and sends, with the events it tells (kit generation 11)


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
    certified: list[str] = Field(default_factory=list)  # categories of its current certifications
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
    """The rule's candidates: serving the lead, of its tiers, certified in its category if the
    rule says so, accepting leads, under capacity, and never a partner the lead was offered to
    before (declined, expired, handed back)."""
    tiers = {t.value for t in rule.tiers}
    return [
        c
        for c in candidates
        if c.partner_id not in excluded
        and c.accepting
        and c.open_offers < c.capacity
        and (not tiers or c.tier in tiers)
        and (not rule.certified or lead.product_category in c.certified)
        and serves(c, lead)
    ]


def _idle_since(at: datetime | None) -> tuple[int, float]:
    return (0, 0.0) if at is None else (1, at.timestamp())  # never: the longest idle


SCORES_KEPT = 20  # candidates whose scores a pick records (the best first): the record stays small


def performance(accepted: int, answered: int) -> float:
    """A partner's acceptance record as a weight factor: 1 without history, up to 2."""
    return 2 * (accepted + 1) / (answered + 2)


def weigher(policy: LeadsPolicy) -> Callable[[str, float], float]:
    """A candidate's score for the weighted picker: its tier's weight times its performance."""
    weights = {t.value: w for t, w in policy.tier_weights.items()}
    return lambda tier, perf: round(weights.get(tier, 1.0) * perf, 6)


def draw(ids: list[str], scores: list[float], k: int, seed: str) -> tuple[list[str], list[Scored]]:
    """The weighted picker over candidates in partner id order: up to `k` distinct ids drawn with
    a seeded generator (reproducible), and the scores of the chosen and of the best others."""
    rng = random.Random(seed)
    left = list(range(len(ids)))
    chosen: list[int] = []
    while left and len(chosen) < k:
        one = rng.choices(left, weights=[max(scores[i], 1e-9) for i in left])[0]
        chosen.append(one)
        left.remove(one)
    rest = sorted(left, key=lambda i: -scores[i])[: max(0, SCORES_KEPT - len(chosen))]
    kept = [*chosen, *sorted(rest)]
    return [ids[i] for i in chosen], [Scored(partner_id=ids[i], score=scores[i]) for i in kept]


def ranked(ids: list[str], k: int) -> tuple[list[str], list[Scored]]:
    """Round robin and longest idle over candidates already in the picker's order (the longest
    waiting first): the first `k`, and the scores (minus the rank) of the first SCORES_KEPT."""
    return ids[:k], [Scored(partner_id=pid, score=float(-i)) for i, pid in enumerate(ids[: max(k, SCORES_KEPT)])]


def pick(
    pool: list[Candidate], picker: Picker, k: int, policy: LeadsPolicy, seed: str
) -> tuple[list[str], list[Scored]]:
    """Up to `k` distinct partners of `pool` by `picker`, and the scores of the best
    SCORES_KEPT candidates (the chosen first)."""
    ordered = sorted(pool, key=lambda c: c.partner_id)
    if picker == Picker.weighted:
        score = weigher(policy)
        scores = [score(c.tier, c.performance) for c in ordered]
        return draw([c.partner_id for c in ordered], scores, k, seed)

    def since(c: Candidate) -> tuple[int, float]:
        return _idle_since(c.last_offered_at if picker == Picker.round_robin else c.last_accepted_at)

    return ranked([c.partner_id for c in sorted(ordered, key=since)], k)


class Ask(BaseModel):
    """What routing asks of its candidate source for one rule that applies to the lead."""

    rule: RoutingRule
    k: int  # partners to pick
    seed: str  # of a weighted draw


Found = tuple[int, list[str], list[Scored]]  # eligible partners, the chosen ones, the scores kept


def routing(lead: LeadFacts, policy: LeadsPolicy, offer_no: int) -> Generator[Ask, Found, Pick]:
    """The rules in order: the first that applies and has candidates picks; a required rule that
    applies without candidates stops routing (the lead waits for a human). Asks the caller (`send`)
    for each applying rule's eligible count and pick: `route` answers from candidates in memory,
    the `leads.offer` activity from one SQL query per rule."""
    reasons: list[str] = []
    for rule in policy.rules:
        if not applies(rule, lead):
            reasons.append(f"rule {rule.name}: does not apply to this lead")
            continue
        k = rule.pool_size if rule.mode == OfferMode.pool else 1
        count, chosen, scored = yield Ask(rule=rule, k=k, seed=f"{lead.lead_id}:{offer_no}")
        if not count:
            if rule.required:
                reasons.append(f"rule {rule.name} (required): no eligible partner; the lead waits for a human")
                return Pick(rule=rule.name, reasons=reasons)
            reasons.append(f"rule {rule.name} (optional): no eligible partner, skipped")
            continue
        reasons.append(f"rule {rule.name}: {count} eligible partner(s), {rule.picker.value} picked {', '.join(chosen)}")
        return Pick(rule=rule.name, mode=rule.mode, partners=chosen, candidates=scored, reasons=reasons)
    reasons.append("no rule placed the lead; it waits for a human")
    return Pick(rule=None, reasons=reasons)


def route(lead: LeadFacts, candidates: list[Candidate], policy: LeadsPolicy, excluded: set[str], offer_no: int) -> Pick:
    """`routing` over candidates in memory (the dry run, and the definition the SQL path keeps)."""

    def answer(ask: Ask) -> Found:
        pool = eligible(ask.rule, lead, candidates, excluded)
        return (len(pool), *pick(pool, ask.rule.picker, ask.k, policy, ask.seed)) if pool else (0, [], [])

    steps = routing(lead, policy, offer_no)
    try:
        ask = next(steps)
        while True:
            ask = steps.send(answer(ask))
    except StopIteration as done:
        return cast(Pick, done.value)


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
    # Since the kit's generation 9: the key of the `offered` state this step records with its
    # offers, in its transaction (its reason the pick's last), instead of a step of its own.
    offered_state_key: str | None = None


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
    events: list[EventInput] = []  # written with the email (`notify_offer`)


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
