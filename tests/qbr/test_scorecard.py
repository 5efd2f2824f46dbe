"""Scorecard arithmetic on hand-computed fixtures (pure rules, no server): metric scores, the
re-weighting of absent metrics, zero targets, bands, trend, percentiles with ties, the
recommended actions and the tier review."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.enums import Tier
from domain.policy import ProgramPolicy
from domain.qbr import (
    Band,
    MdfFigures,
    Metric,
    Recommendation,
    ScorecardInputs,
    held_this_period,
    percentiles,
    period_bounds,
    period_of,
    scorecard,
    shift,
    trend,
    weighted_score,
)

pytestmark = pytest.mark.unit
Q = ProgramPolicy().qbr
WINDOW = {"window_start": datetime(2027, 1, 1, tzinfo=UTC), "window_end": datetime(2027, 4, 1, tzinfo=UTC)}


def inputs(**over) -> ScorecardInputs:
    return ScorecardInputs(currency="USD", **WINDOW, **over)


def by_metric(card) -> dict[Metric, float | None]:
    return {m.metric: m.score for m in card.metrics}


def test_gold_partner_by_hand():
    inp = inputs(
        revenue_minor=15_000_000, target_minor=20_000_000, pipeline_count=3, pipeline_minor=10_000_000,
        registrations=2, approved=2, decided=2, won=1, lost=1, certifications_current=1, certifications_required=2,
        onboarding_state="active", overdue_milestones=1,
    )  # fmt: skip
    card = scorecard("p1", "2027-Q1", Tier.gold, inp, Q, previous=[60.0, 80.0])
    assert by_metric(card) == {
        Metric.revenue: 75.0,  # 150,000 of 200,000
        Metric.pipeline: 50.0,  # 100,000 against a pipeline goal of 1.0 x target
        Metric.registrations: 50.0,  # 2 of a goal of 4
        Metric.win_rate: 100.0,  # 1 of 2 against a goal of 50 %
        Metric.certifications: 50.0,  # 1 of 2 required
        Metric.mdf: None,  # absent (no MDF figures), not zero
        Metric.onboarding: 100.0,
        Metric.responsiveness: 75.0,  # one overdue milestone, 25 points each
    }
    # (30*75 + 10*50 + 10*50 + 10*100 + 15*50 + 5*100 + 10*75) / (100 - 10 for the absent MDF) = 6250 / 90
    assert card.score == 69.4
    assert card.band == Band.watch
    assert card.trend == -0.6  # 69.4 - mean(60, 80)
    assert card.review is not None and card.review.recommendation == Recommendation.demote
    assert card.review.to_tier == Tier.silver
    assert card.review.reasons == ["1 current certifications of 2 required"]


def test_absent_metrics_are_reweighted_not_zero():
    inp = inputs(target_minor=0, registrations=0, certifications_required=0, onboarding_state="onboarding")
    card = scorecard("p2", "2027-Q1", Tier.registered, inp, Q, previous=[])
    scores = by_metric(card)
    # A zero target: revenue and pipeline are not scored; nothing closed: no win rate; no MDF.
    assert [m for m, s in scores.items() if s is None] == [Metric.revenue, Metric.pipeline, Metric.win_rate, Metric.mdf]
    # (10*0 + 15*100 + 5*50 + 10*100) / (10 + 15 + 5 + 10) = 2750 / 40
    assert card.score == round(2750 / 40, 1)
    assert card.trend is None
    assert card.actions == ["Register your next deal"]
    assert weighted_score([m.model_copy(update={"score": None}) for m in card.metrics]) == 0.0


def test_mdf_metric_and_the_recommended_actions():
    mdf = MdfFigures(
        currency="USD", allocated_minor=300_000, claimed_minor=60_000, unclaimed_minor=240_000,
        claim_deadline=date(2027, 3, 31), attributed_revenue_minor=0,
    )  # fmt: skip
    inp = inputs(
        target_minor=1_000_000, registrations=0, certifications_current=0, certifications_required=1,
        certifications_lapsed=["Security Specialist"], mdf=mdf,
    )  # fmt: skip
    card = scorecard("p3", "2027-Q1", Tier.silver, inp, Q, previous=[50.0])
    assert by_metric(card)[Metric.mdf] == 22.2  # 20 % utilized against a goal of 90 %
    assert card.actions == [
        "Claim your USD 2,400.00 of MDF before 31 March 2027",
        "Renew the Security Specialist certification",
        "Register your next deal",
    ]


def test_bands_and_trend_cut_offs():
    assert trend(70.0, [10.0, 50.0, 60.0, 70.0, 80.0]) == 5.0  # only the last four periods count
    from domain.qbr import band

    assert [band(s, Q) for s in (70.0, 69.9, 45.0, 44.9)] == [Band.healthy, Band.watch, Band.watch, Band.at_risk]


def test_percentiles_share_ties():
    assert percentiles([50.0, 70.0, 70.0, 90.0]) == [12.5, 50.0, 50.0, 87.5]
    assert percentiles([42.0]) == [50.0]
    assert percentiles([60.0, 60.0, 60.0]) == [50.0, 50.0, 50.0]


def test_promotion_needs_every_rule():
    good = inputs(
        revenue_minor=40_000_000, target_minor=20_000_000, pipeline_minor=30_000_000, pipeline_count=5,
        registrations=8, approved=8, decided=8, won=4, lost=0, certifications_current=4, certifications_required=2,
    )  # fmt: skip
    card = scorecard("p4", "2027-Q1", Tier.gold, good, Q, previous=[])
    assert card.score == 100.0 and card.review is not None
    assert (card.review.recommendation, card.review.to_tier) == (Recommendation.promote, Tier.platinum)
    short = good.model_copy(update={"certifications_current": 3})  # platinum needs 4
    card = scorecard("p4", "2027-Q1", Tier.gold, short, Q, previous=[])
    assert card.review is not None and card.review.recommendation == Recommendation.hold


def test_periods():
    assert shift("2027-Q1", -1) == "2026-Q4" and shift("2026-Q4", 5) == "2028-Q1"
    assert period_of(datetime(2027, 3, 31, 23, 30, tzinfo=UTC), "UTC") == "2027-Q1"
    assert period_of(datetime(2027, 3, 31, 23, 30, tzinfo=UTC), "Europe/Berlin") == "2027-Q2"
    start, end = period_bounds("2027-Q2", "Europe/Berlin")
    assert (start, end) == (datetime(2027, 3, 31, 22, tzinfo=UTC), datetime(2027, 6, 30, 22, tzinfo=UTC))
    assert [held_this_period(f"2027-Q{q}", 2) for q in (1, 2, 3, 4)] == [True, False, True, False]
