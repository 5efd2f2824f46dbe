"""Scorecard arithmetic on hand-computed fixtures (pure rules, no server): metric scores, the
re-weighting of absent metrics, zero targets, bands, trend, percentiles with ties, the
recommended actions and the tier review."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.qbr.periods import held_this_period, period_bounds, period_of, shift
from journeys.qbr.scoring import (
    Band,
    MdfFigures,
    Metric,
    Recommendation,
    ScorecardInputs,
    band,
    percentiles,
    recommend_actions,
    review_tier,
    scorecard,
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
        revenue_minor=15_000_000,
        target_minor=20_000_000,
        pipeline_count=3,
        pipeline_minor=10_000_000,
        registrations=2,
        approved=2,
        decided=2,
        won=1,
        lost=1,
        certifications_current=1,
        certifications_required=2,
        onboarding_state="active",
        overdue_milestones=1,
    )
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
        currency="USD",
        allocated_minor=300_000,
        claimed_minor=60_000,
        unclaimed_minor=240_000,
        claim_deadline=date(2027, 3, 31),
        attributed_revenue_minor=0,
    )
    inp = inputs(
        target_minor=1_000_000,
        registrations=0,
        certifications_current=0,
        certifications_required=1,
        certifications_lapsed=["Security Specialist"],
        mdf=mdf,
    )
    card = scorecard("p3", "2027-Q1", Tier.silver, inp, Q, previous=[50.0])
    assert by_metric(card)[Metric.mdf] == 22.2  # 20 % utilized against a goal of 90 %
    assert card.actions == [
        "Claim your USD 2,400.00 of MDF before 31 March 2027",
        "Renew the Security Specialist certification",
        "Register your next deal",
    ]


def test_bands_and_trend_cut_offs():
    assert trend(70.0, [10.0, 50.0, 60.0, 70.0, 80.0]) == 5.0  # only the last four periods count
    assert [band(s, Q) for s in (70.0, 69.9, 45.0, 44.9)] == [Band.healthy, Band.watch, Band.watch, Band.at_risk]


def test_percentiles_share_ties():
    assert percentiles([50.0, 70.0, 70.0, 90.0]) == [12.5, 50.0, 50.0, 87.5]
    assert percentiles([42.0]) == [50.0]
    assert percentiles([60.0, 60.0, 60.0]) == [50.0, 50.0, 50.0]


def test_promotion_needs_every_rule():
    good = inputs(
        revenue_minor=40_000_000,
        target_minor=20_000_000,
        pipeline_minor=30_000_000,
        pipeline_count=5,
        registrations=8,
        approved=8,
        decided=8,
        won=4,
        lost=0,
        certifications_current=4,
        certifications_required=2,
    )
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


# ---------------------------------------------------------------------------- every bar: at, above, below

GOLD_AT_THE_PROMOTION_BARS = {  # the default gold rules: score 85, 150 % of a 200,000.00 target, 6 registrations,
    "revenue_minor": 30_000_000,  # and platinum's 4 current certifications
    "target_minor": 20_000_000,
    "registrations": 6,
    "certifications_current": 4,
    "certifications_required": 2,
}


@pytest.mark.parametrize(
    ("score", "change", "recommendation"),
    [
        (85.0, {}, Recommendation.promote),  # every figure exactly at its bar
        (85.1, {}, Recommendation.promote),
        (84.9, {}, Recommendation.hold),
        (85.0, {"revenue_minor": 30_000_001}, Recommendation.promote),
        (85.0, {"revenue_minor": 29_999_999}, Recommendation.hold),
        (85.0, {"registrations": 7}, Recommendation.promote),
        (85.0, {"registrations": 5}, Recommendation.hold),
        (85.0, {"certifications_current": 5}, Recommendation.promote),
        (85.0, {"certifications_current": 3}, Recommendation.hold),
        (85.0, {"target_minor": 0}, Recommendation.hold),  # no target: no attainment to promote on
    ],
)
def test_promotion_bars(score, change, recommendation):
    review = review_tier(Tier.gold, inputs(**{**GOLD_AT_THE_PROMOTION_BARS, **change}), score, Q)
    assert review.recommendation == recommendation
    if recommendation == Recommendation.promote:
        assert review.to_tier == Tier.platinum
        assert review.reasons[0] == f"score {score:g} at least 85"
        assert review.reasons[2:] == [
            f"{inputs(**{**GOLD_AT_THE_PROMOTION_BARS, **change}).registrations} registrations, at least 6",
            f"{review_certs(change)} current certifications, platinum needs 4",
        ]
        assert review.reasons[1].startswith("revenue 150% of target, at least 150%")
    else:
        assert (review.to_tier, review.reasons) == (None, ["inside the tier's rules"])


def review_certs(change: dict) -> int:
    return change.get("certifications_current", 4)


GOLD_INSIDE = {
    "revenue_minor": 10_000_000,
    "target_minor": 20_000_000,
    "certifications_current": 2,
    "certifications_required": 2,
}


@pytest.mark.parametrize(
    ("score", "change", "reasons"),
    [
        (40.0, {}, []),  # the gold bars: a score below 40, revenue below 40 % of the target
        (40.1, {}, []),
        (39.9, {}, ["score 39.9 below 40"]),
        (50.0, {"revenue_minor": 8_000_000}, []),
        (50.0, {"revenue_minor": 8_000_001}, []),
        (50.0, {"revenue_minor": 7_999_999}, ["revenue 40% of target, below 40%"]),
        (50.0, {"revenue_minor": 0}, ["revenue 0% of target, below 40%"]),
        (50.0, {"certifications_current": 3}, []),
        (50.0, {"certifications_current": 1}, ["1 current certifications of 2 required"]),
        (50.0, {"target_minor": 0, "revenue_minor": 0}, []),  # no target: attainment is not judged
        (
            0.0,
            {"revenue_minor": 0, "certifications_current": 0},
            ["score 0 below 40", "revenue 0% of target, below 40%", "0 current certifications of 2 required"],
        ),
    ],
)
def test_demotion_bars(score, change, reasons):
    review = review_tier(Tier.gold, inputs(**{**GOLD_INSIDE, **change}), score, Q)
    if reasons:
        assert (review.recommendation, review.to_tier, review.reasons) == (Recommendation.demote, Tier.silver, reasons)
    else:
        assert (review.recommendation, review.to_tier) == (Recommendation.hold, None)


def test_the_lowest_tier_is_never_demoted_nor_the_highest_promoted():
    worst = inputs(target_minor=1_000_000, certifications_required=1)
    assert review_tier(Tier.registered, worst, 0.0, Q).recommendation == Recommendation.hold
    best = inputs(revenue_minor=10**12, target_minor=1, registrations=100, certifications_current=100)
    assert review_tier(Tier.platinum, best, 100.0, Q).recommendation == Recommendation.hold
    # Silver has no attainment bar for demotion: no revenue at all with a fine score holds.
    assert review_tier(Tier.silver, inputs(target_minor=5_000_000), 30.0, Q).recommendation == Recommendation.hold
    assert review_tier(Tier.silver, inputs(target_minor=5_000_000), 29.9, Q).to_tier == Tier.registered


@pytest.mark.parametrize(
    ("milestones", "actions", "score"),
    [(0, 0, 100.0), (0, 1, 75.0), (1, 0, 75.0), (1, 1, 50.0), (0, 4, 0.0), (3, 3, 0.0)],
)
def test_overdue_milestones_and_action_items_both_cost_responsiveness(milestones, actions, score):
    card = scorecard("p", "2027-Q1", Tier.gold, inputs(overdue_milestones=milestones, overdue_actions=actions), Q, [])
    assert by_metric(card)[Metric.responsiveness] == score
    assert card.metrics[-1].value == milestones + actions
    assert card.metrics[-1].note == f"{milestones} milestones and {actions} action items overdue"


def test_an_overdue_action_item_can_cost_a_promotion():
    """The action items the partner left overdue lower the score the tier review reads."""
    good = inputs(
        revenue_minor=40_000_000,
        target_minor=20_000_000,
        pipeline_minor=10_000_000,
        pipeline_count=5,
        registrations=8,
        won=4,
        certifications_current=4,
        certifications_required=2,
    )
    # (30*100 + 10*50 + 10*100 + 10*100 + 15*100 + 5*100 + 10*responsiveness) / 90 (no MDF figures)
    for overdue, score, recommendation in [(0, 94.4, "promote"), (1, 91.7, "promote"), (4, 83.3, "hold")]:
        card = scorecard("p", "2027-Q1", Tier.gold, good.model_copy(update={"overdue_actions": overdue}), Q, [])
        assert (card.score, card.review.recommendation) == (score, recommendation), overdue


@pytest.mark.parametrize(
    ("healthy", "watch", "cuts"),
    [
        (70, 45, {70.0: Band.healthy, 69.9: Band.watch, 45.0: Band.watch, 44.9: Band.at_risk}),
        (80, 50, {80.0: Band.healthy, 79.9: Band.watch, 50.0: Band.watch, 49.9: Band.at_risk, 0.0: Band.at_risk}),
        (60, 60, {60.0: Band.healthy, 59.9: Band.at_risk}),  # no watch band at all
        (100, 0, {100.0: Band.healthy, 99.9: Band.watch, 0.0: Band.watch}),
    ],
)
def test_band_cut_offs(healthy, watch, cuts):
    policy = Q.model_copy(update={"healthy_from": healthy, "watch_from": watch})
    assert {s: band(s, policy) for s in cuts} == cuts


@pytest.mark.parametrize(
    ("figures", "score", "value"),
    [
        ({"allocated_minor": 0, "claimed_minor": 0}, None, None),  # nothing allocated: not scored
        ({"allocated_minor": 100_00, "claimed_minor": 90_00}, 100.0, 0.9),  # the 90 % goal
        ({"allocated_minor": 100_00, "claimed_minor": 45_00}, 50.0, 0.45),
        ({"allocated_minor": 100_00, "claimed_minor": 100_00}, 100.0, 1.0),  # capped at 100
    ],
)
def test_mdf_utilization_against_its_goal(figures, score, value):
    mdf = MdfFigures(currency="USD", unclaimed_minor=0, **figures)
    metric = next(m for m in scorecard("p", "2027-Q1", Tier.gold, inputs(mdf=mdf), Q, []).metrics if m.metric == "mdf")
    assert (metric.score, metric.value) == (score, value)


@pytest.mark.parametrize(("state", "score"), [("active", 100.0), ("onboarding", 50.0), ("at_risk", 0.0), ("x", 0.0)])
def test_onboarding_state_scores(state, score):
    assert (
        by_metric(scorecard("p", "2027-Q1", Tier.gold, inputs(onboarding_state=state), Q, []))[Metric.onboarding]
        == score
    )


@pytest.mark.parametrize(
    ("won", "lost", "score"),
    [(0, 0, None), (1, 1, 100.0), (1, 3, 50.0), (0, 2, 0.0), (2, 0, 100.0)],  # the goal: half won
)
def test_win_rate_against_its_goal(won, lost, score):
    assert by_metric(scorecard("p", "2027-Q1", Tier.gold, inputs(won=won, lost=lost), Q, []))[Metric.win_rate] == score


def test_every_metric_says_what_it_measured():
    inp = inputs(
        revenue_minor=15_000_000,
        target_minor=20_000_000,
        target_source="partner",
        pipeline_count=3,
        pipeline_minor=10_000_000,
        registrations=2,
        approved=2,
        decided=3,
        won=1,
        lost=1,
        certifications_current=1,
        certifications_required=2,
        certifications_lapsed=["Network Associate", "Security"],
        overdue_milestones=1,
        overdue_actions=2,
        mdf=MdfFigures(
            currency="EUR",
            allocated_minor=1_000_000,
            claimed_minor=450_000,
            unclaimed_minor=550_000,
            attributed_revenue_minor=12_345_600,
            claim_deadline=date(2027, 5, 15),
        ),
    )
    card = scorecard("p1", "2027-Q1", Tier.gold, inp, Q, previous=[60.0])
    assert [(m.metric.value, m.value, m.score, m.weight, m.note) for m in card.metrics] == [
        ("revenue", 0.75, 75.0, 30.0, "USD 150,000.00 closed-won of a USD 200,000.00 target (partner)"),
        ("pipeline", 0.5, 50.0, 10.0, "3 open registrations worth USD 100,000.00"),
        ("registrations", 2.0, 50.0, 10.0, "2 registered (goal 4), 2 of 3 decided approved"),
        ("win_rate", 0.5, 100.0, 10.0, "1 won of 2"),
        ("certifications", 1.0, 50.0, 15.0, "1 current of 2 required"),
        ("mdf", 0.45, 50.0, 10.0, "EUR 4,500.00 claimed of EUR 10,000.00; EUR 123,456.00 of revenue attributed"),
        ("onboarding", 100.0, 100.0, 5.0, "onboarding active"),
        ("responsiveness", 3.0, 25.0, 10.0, "1 milestones and 2 action items overdue"),
    ]
    assert card.actions == [  # the three most valuable
        "Claim your EUR 5,500.00 of MDF before 15 May 2027",
        "Renew the Network Associate certification",
        "Complete your onboarding: 1 step(s) overdue",
    ]
    assert recommend_actions(inp, card.metrics, limit=10)[3:] == ["Close your 2 overdue action item(s)"]


@pytest.mark.parametrize(
    ("over", "actions"),
    [
        (
            {"certifications_current": 0, "certifications_required": 1, "registrations": 1, "pipeline_count": 1},
            ["Certify 1 more person to meet your tier's requirement"],
        ),
        (
            {
                "certifications_required": 3,
                "registrations": 1,
                "mdf": MdfFigures(currency="USD", allocated_minor=100, claimed_minor=0, unclaimed_minor=100),
            },
            [
                "Claim your USD 1.00 of MDF",
                "Certify 3 more people to meet your tier's requirement",
                "Register your next deal",
            ],
        ),
        (
            {
                "registrations": 1,
                "pipeline_count": 1,
                "certifications_current": 2,
                "certifications_required": 2,
                "mdf": MdfFigures(currency="USD", allocated_minor=100, claimed_minor=100, unclaimed_minor=0),
            },
            [],
        ),
        ({"registrations": 0, "pipeline_count": 4}, ["Register your next deal"]),
    ],
)
def test_recommended_actions(over, actions):
    assert recommend_actions(inputs(**over), [], limit=10) == actions


def test_a_metric_without_a_weight_weighs_nothing_and_a_target_of_one_counts():
    policy = Q.model_copy(update={"weights": {Metric.revenue: 1.0}})
    card = scorecard("p", "2027-Q1", Tier.gold, inputs(revenue_minor=1, target_minor=3), policy, [])
    assert [m.weight for m in card.metrics] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert (card.metrics[0].value, card.metrics[0].score, card.score) == (0.3333, 33.3, 33.3)
    assert (
        by_metric(scorecard("p", "2027-Q1", Tier.gold, inputs(revenue_minor=1, target_minor=1), Q, []))[Metric.revenue]
        == 100.0
    )
