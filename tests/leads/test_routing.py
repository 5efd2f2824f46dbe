"""Routing, pure: the rules in order (required / optional), the filters, the pickers and the pool;
property tests of the picker (hypothesis): weighted shares converge to the weights, a partner
offered the lead before is never offered it again, capacity is never exceeded."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.enums import Tier
from journeys.leads.domain import Candidate, LeadFacts, LeadInput, describe, pick, route
from journeys.leads.policy import LeadsPolicy, OfferMode, Picker, RoutingRule

pytestmark = pytest.mark.unit

LEAD = LeadFacts(lead_id="L1", country="DE", region="by", product_category="network")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cand(pid: str, **kw) -> Candidate:
    return Candidate(partner_id=pid, tier=kw.pop("tier", "gold"), country=kw.pop("country", "DE"), **kw)


def policy(*rules: RoutingRule, **kw) -> LeadsPolicy:
    return LeadsPolicy(rules=list(rules) or [RoutingRule(name="anyone")], **kw)


def test_rules_in_order_required_stops_optional_skips():
    cands = [cand("a", tier="silver"), cand("b", tier="gold")]
    platinum_only = RoutingRule(name="platinum", tiers=[Tier.platinum])
    gold = RoutingRule(name="gold", tiers=[Tier.gold])
    got = route(LEAD, cands, policy(platinum_only, gold), set(), 1)
    assert got.rule == "gold" and got.partners == ["b"] and got.placed
    assert got.reasons[0] == "rule platinum (optional): no eligible partner, skipped"
    required = RoutingRule(name="platinum", tiers=[Tier.platinum], required=True)
    stopped = route(LEAD, cands, policy(required, gold), set(), 1)
    assert not stopped.placed and stopped.rule == "platinum" and "waits for a human" in stopped.reasons[-1]
    french = RoutingRule(name="fr", countries=["FR"], required=True)
    assert route(LEAD, cands, policy(french, gold), set(), 1).reasons[0] == "rule fr: does not apply to this lead"
    assert not route(LEAD, [], policy(), set(), 1).placed


def test_filters_territories_regions_categories_accepting_capacity():
    cands = [
        cand("abroad", country="FR"),
        cand("covers-de", country="FR", countries=["DE"]),
        cand("other-region", regions=["nrw"]),
        cand("other-product", categories=["security"]),
        cand("closed", accepting=False),
        cand("full", capacity=2, open_offers=2),
        cand("ok", regions=["by"], categories=["network"]),
    ]
    rule = RoutingRule(name="all", mode=OfferMode.pool, pool_size=10, regions=["by"], categories=["network"])
    got = route(LEAD, cands, policy(rule), set(), 1)
    assert sorted(got.partners) == ["covers-de", "ok"]


def test_round_robin_and_longest_idle_prefer_the_longest_waiting():
    cands = [
        cand("recent", last_offered_at=T0 + timedelta(days=2), last_accepted_at=T0),
        cand("older", last_offered_at=T0, last_accepted_at=T0 + timedelta(days=3)),
        cand("never"),
    ]
    assert route(LEAD, cands, policy(RoutingRule(name="rr")), set(), 1).partners == ["never"]
    assert route(LEAD, cands, policy(RoutingRule(name="rr")), {"never"}, 2).partners == ["older"]
    idle = RoutingRule(name="idle", picker=Picker.longest_idle, mode=OfferMode.pool, pool_size=3)
    assert route(LEAD, cands, policy(idle), set(), 1).partners == ["never", "recent", "older"]


def test_a_weighted_pick_is_reproducible_and_scored():
    cands = [cand(p, tier=t) for p, t in (("a", "gold"), ("b", "silver"), ("c", "registered"))]
    rule = RoutingRule(name="w", picker=Picker.weighted)
    first = route(LEAD, cands, policy(rule), set(), 1)
    assert first == route(LEAD, cands, policy(rule), set(), 1)
    assert {s.partner_id: s.score for s in first.candidates} == {"a": 3.0, "b": 2.0, "c": 1.0}


WEIGHTS = {"platinum": 4.0, "gold": 3.0, "silver": 2.0, "registered": 1.0}


@settings(max_examples=15, deadline=None)
@given(tiers=st.lists(st.sampled_from(list(WEIGHTS)), min_size=2, max_size=5))
def test_weighted_shares_converge_to_the_weights(tiers):
    cands = [cand(f"p{i}", tier=t) for i, t in enumerate(tiers)]
    draws = 4000
    counts = Counter(pick(cands, Picker.weighted, 1, LeadsPolicy(), f"lead-{n}")[0][0] for n in range(draws))
    total = sum(WEIGHTS[t] for t in tiers)
    for i, t in enumerate(tiers):
        assert abs(counts[f"p{i}"] / draws - WEIGHTS[t] / total) < 0.04, (tiers, counts)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    capacities=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=12, max_size=12),
    picker=st.sampled_from(list(Picker)),
    mode=st.sampled_from(list(OfferMode)),
    max_offers=st.integers(1, 12),
)
def test_never_offered_twice_never_over_capacity(n, capacities, picker, mode, max_offers):
    cands = [cand(f"p{i}", capacity=c, open_offers=o) for i, (c, o) in enumerate(capacities[:n])]
    rules = policy(RoutingRule(name="r", picker=picker, mode=mode, pool_size=3))
    offered: list[str] = []
    while len(offered) < max_offers:
        got = route(LEAD, cands, rules, set(offered), len(offered) + 1)
        if not got.placed:
            break
        assert not set(got.partners) & set(offered), "a partner was offered the same lead again"
        offered += got.partners
    assert len(offered) == len(set(offered))
    full = {c.partner_id for c in cands if c.open_offers >= c.capacity}
    assert not set(offered) & full, "a partner at capacity was offered a lead"
    assert set(offered) | full == {c.partner_id for c in cands} or len(offered) >= max_offers


def test_policy_bounds():
    assert LeadsPolicy(working_days=[4, 0]).working_days == [0, 4]
    for bad in (
        {"day_starts": "18:00", "day_ends": "09:00"},
        {"day_starts": "9"},
        {"reminder_hours": 20, "offer_hours": 16},
        {"nudge_days": [40]},
        {"default_time_zone": "Mars/Olympus"},
        {"working_days": [7]},
        {"rules": [{"name": "a"}, {"name": "a"}]},
        {"rules": [{"name": "a", "countries": ["de"]}]},
    ):
        with pytest.raises(ValidationError):
            LeadsPolicy.model_validate(bad)


def test_describe_names_the_lead():
    summary, details = describe(
        LeadInput(lead_id="L1", company="Initech", country="DE", region="by", product_category="network", source="web")
    )
    assert summary == "Lead: Initech — network, DE/by" and "**Source** web" in details
