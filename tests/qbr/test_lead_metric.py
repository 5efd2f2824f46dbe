"""The scorecard's lead metric (figures from the leads journey's `scorecard_inputs`): acceptance
rate, median time to accept and conversion rate, each at its goal, just over and just under it;
listed only for a partner that had lead offers (scorecards of the others are unchanged)."""

from __future__ import annotations

import pytest

from domain.enums import Tier
from journeys.qbr.scoring import LeadFigures, Metric, lead_score, scorecard, weighted_score
from tests.qbr.test_scorecard import Q, inputs

pytestmark = pytest.mark.unit

# The defaults: 60 % of offers accepted, a median of 8 hours to accept, 30 % of accepted leads converted.
assert (Q.lead_acceptance_goal, Q.lead_accept_hours_goal, Q.lead_conversion_goal) == (0.6, 8, 0.3)


@pytest.mark.parametrize(
    ("accepted", "score"),
    [(6, 100.0), (7, 100.0), (5, 83.3)],  # 6 of 10 is the goal; over it 100; under it in proportion
)
def test_acceptance_rate_at_over_and_under_the_goal(accepted, score):
    f = LeadFigures(offers=10, accepted=accepted, median_hours_to_accept=1.0, converted=accepted)
    value, got, _ = lead_score(f, Q)
    assert (value, got) == (accepted / 10, round((score + 100.0 + 100.0) / 3, 1))


@pytest.mark.parametrize(
    ("hours", "time_score"),
    [(8.0, 100.0), (4.0, 100.0), (16.0, 50.0)],  # at or under the goal: 100; over it: goal / median
)
def test_median_time_to_accept_at_under_and_over_the_goal(hours, time_score):
    f = LeadFigures(offers=5, accepted=3, median_hours_to_accept=hours, converted=1)  # 60 %: 100; 33 %: 100
    value, score, note = lead_score(f, Q)
    assert value == 0.6 and score == round((100.0 + time_score + 100.0) / 3, 1)
    assert note == f"3 of 5 lead offers accepted, median {hours:g} h to accept (goal 8 h); 1 of 3 converted"


@pytest.mark.parametrize(
    ("converted", "conversion_score"),
    [(3, 100.0), (4, 100.0), (2, 66.7)],  # 3 of 10 is the goal; over it 100; under it in proportion
)
def test_conversion_rate_at_over_and_under_the_goal(converted, conversion_score):
    f = LeadFigures(offers=10, accepted=10, median_hours_to_accept=1.0, converted=converted)
    _, score, _ = lead_score(f, Q)
    assert score == round((100.0 + 100.0 + conversion_score) / 3, 1)


def test_nothing_accepted_scores_the_acceptance_alone():
    assert lead_score(LeadFigures(offers=4, accepted=0), Q) == (0.0, 0.0, "0 of 4 lead offers accepted")


def test_the_metric_is_listed_and_weighted_only_for_a_partner_offered_leads():
    plain = scorecard("p", "2027-Q1", Tier.registered, inputs(), Q, previous=[])
    assert Metric.leads not in {m.metric for m in plain.metrics}
    idle = scorecard("p", "2027-Q1", Tier.registered, inputs(leads=LeadFigures(offers=0, accepted=0)), Q, [])
    assert idle.metrics == plain.metrics and idle.score == plain.score
    led = scorecard("p", "2027-Q1", Tier.registered, inputs(leads=LeadFigures(offers=2, accepted=0)), Q, previous=[])
    (lead,) = [m for m in led.metrics if m.metric == Metric.leads]
    assert (lead.value, lead.score, lead.weight) == (0.0, 0.0, 10.0)
    assert led.score == weighted_score(led.metrics) < plain.score  # a partner ignoring its leads scores lower
