"""What it takes to reach the next tier (the portal's scorecard page): each bar of the tier
review's promotion rule in plain figures, met exactly at the bar, not a hair below, and always in
agreement with the tier review itself."""

from __future__ import annotations

import pytest

from domain.enums import Tier
from journeys.qbr.scoring import Recommendation, next_tier, review_tier
from tests.qbr.test_scorecard import GOLD_AT_THE_PROMOTION_BARS, Q, inputs

pytestmark = pytest.mark.unit


def bars(tier: Tier, score: float, **over):
    found = next_tier(tier, inputs(**{**GOLD_AT_THE_PROMOTION_BARS, **over}), score, Q)
    assert found is not None
    return found, {r.key: r for r in found.requirements}


@pytest.mark.parametrize(
    ("score", "change", "unmet", "missing"),
    [
        (85.0, {}, None, 0),  # every figure exactly at its bar
        (85.1, {}, None, 0),
        (84.9, {}, "score", 0.1),
        (85.0, {"revenue_minor": 30_000_001}, None, 0),
        (85.0, {"revenue_minor": 29_999_999}, "revenue", 1),  # one cent short
        (85.0, {"registrations": 7}, None, 0),
        (85.0, {"registrations": 5}, "registrations", 1),
        (85.0, {"certifications_current": 5}, None, 0),
        (85.0, {"certifications_current": 3}, "certifications", 1),
        (85.0, {"target_minor": 0, "revenue_minor": 0}, "revenue", 0),  # no target: nothing to attain
    ],
)
def test_each_bar_is_met_at_its_figure_and_not_below(score, change, unmet, missing):
    found, by_key = bars(Tier.gold, score, **change)
    assert found.to_tier == Tier.platinum and found.currency == "USD"
    assert [k for k, r in by_key.items() if not r.met] == ([unmet] if unmet else [])
    if unmet:
        assert by_key[unmet].missing == missing
    assert all(r.missing == 0 for r in by_key.values() if r.met)
    # The page and the tier review agree: ready exactly when the review promotes.
    review = review_tier(Tier.gold, inputs(**{**GOLD_AT_THE_PROMOTION_BARS, **change}), score, Q)
    assert found.ready == (review.recommendation == Recommendation.promote)


def test_the_figures_come_from_the_policy():
    found, by_key = bars(Tier.gold, 60.0, revenue_minor=10_000_000, registrations=2, certifications_current=1)
    assert (found.target_minor, found.attainment) == (20_000_000, 1.5)
    assert (by_key["score"].need, by_key["score"].missing) == (85, 25.0)
    revenue = by_key["revenue"]
    assert (revenue.need, revenue.have, revenue.missing) == (30_000_000, 10_000_000, 20_000_000)
    assert (by_key["registrations"].need, by_key["registrations"].missing) == (6, 4)
    assert (by_key["certifications"].need, by_key["certifications"].missing) == (4, 3)  # platinum's requirement
    assert not found.ready
    # The registered tier climbs to silver on its own rules: 80, 150 % of its target, 2 registrations, 1 cert.
    low = next_tier(Tier.registered, inputs(target_minor=1_000_000), 0.0, Q)
    assert low is not None and low.to_tier == Tier.silver
    assert [(r.key, r.need) for r in low.requirements] == [
        ("score", 80),
        ("revenue", 1_500_000),
        ("registrations", 2),
        ("certifications", 1),
    ]


def test_no_next_tier_at_the_top_or_when_never_promoted():
    assert next_tier(Tier.platinum, inputs(), 100.0, Q) is None
    never = Q.model_copy(deep=True)
    never.tiers[Tier.silver].promote_min_score = None
    assert next_tier(Tier.silver, inputs(), 100.0, never) is None
