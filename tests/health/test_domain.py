"""Partner health's pure rules: the score is explainable (its contributions sum to it, property
test), the bands and the early-warning bars at the bar and on both sides, and what changed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Tier
from domain.journeys import Coverage
from journeys.health.contract import HealthPolicy, Signal, cam_load
from journeys.health.domain import (
    Contribution,
    HealthBand,
    HealthInput,
    alert_reason,
    band_of,
    changes,
    describe,
    episode_over,
    explain,
    score,
)

pytestmark = pytest.mark.unit
POLICY = HealthPolicy()
KINDS = sorted(POLICY.weights)

signals = st.lists(
    st.builds(
        Signal,
        kind=st.sampled_from([*KINDS, "unknown_kind"]),
        key=st.text("abc:123", min_size=1, max_size=6),
        what=st.just("a reason"),
        severity=st.floats(min_value=0.01, max_value=1.0),
    ),
    max_size=30,
)


@settings(deadline=None)
@given(signals)
def test_the_contributions_sum_to_the_score(found):
    result = score(found, POLICY)
    assert sum(c.points for c in result.contributions) == result.score
    assert 0 <= result.score <= 100
    assert result.band == band_of(result.score, POLICY)
    assert len({c.key for c in result.contributions}) == len(result.contributions)


def test_a_lapsed_certification_is_listed_with_its_points():
    lapsed = Signal(kind="cert_lapsed", key="cert:1", what="certification Network Associate lapsed on 2027-03-02")
    result = score([lapsed], POLICY)
    assert result.score == 88
    assert [c.line() for c in result.contributions] == [
        "+100: baseline",
        "\u221212: certification Network Associate lapsed on 2027-03-02",
    ]


def test_the_score_stops_at_zero_with_the_floor_as_a_contribution():
    many = [Signal(kind="cert_lapsed", key=f"c{i}", what=f"lapse {i}") for i in range(10)]
    result = score(many, POLICY)
    assert result.score == 0 and result.band == HealthBand.at_risk
    assert result.contributions[-1].kind == "floor" and result.contributions[-1].points == 20


@pytest.mark.parametrize(
    ("value", "band"),
    [(71, "healthy"), (70, "healthy"), (69, "watch"), (46, "watch"), (45, "watch"), (44, "at_risk")],
)
def test_bands_at_the_bar_and_both_sides(value, band):
    assert band_of(value, POLICY) == HealthBand(band)


@pytest.mark.parametrize(("drop", "alerts"), [(14, False), (15, True), (16, True)])
def test_a_drop_alerts_at_the_bar(drop, alerts):
    reason = alert_reason(
        90 - drop,
        HealthBand.healthy,
        HealthBand.healthy,
        90,
        POLICY.model_copy(update={"healthy_from": 0, "watch_from": 0}),
    )
    assert (reason is not None) == alerts
    if alerts:
        assert f"dropped {drop} points (from 90 to {90 - drop})" in reason


def test_a_worse_band_alerts_and_a_better_one_does_not():
    assert (
        alert_reason(60, HealthBand.watch, HealthBand.healthy, None, POLICY) == "health went from healthy to watch (60)"
    )
    assert alert_reason(75, HealthBand.healthy, HealthBand.watch, None, POLICY) is None
    assert alert_reason(60, HealthBand.watch, None, None, POLICY) is None


@pytest.mark.parametrize(
    ("value", "peak", "over"), [(70, None, True), (69, None, False), (70, 85, False), (70, 84, True)]
)
def test_an_episode_ends_once_healthy_without_an_open_drop(value, peak, over):
    assert episode_over(value, peak, POLICY) is over


def test_changes_list_what_appeared_and_what_went():
    a = Contribution(key="cert:1", kind="cert_lapsed", points=-12, what="cert lapsed")
    b = Contribution(key="milestone:x", kind="milestone_overdue", points=-8, what="milestone overdue")
    base = Contribution(key="baseline", kind="baseline", points=100, what="baseline")
    moved = changes([base, a], [base, b])
    assert [c.line() for c in moved] == ["\u22128: milestone overdue", "+12: no longer: cert lapsed"]
    assert changes([base, a], [base, a]) == []
    assert explain("why", [base, a, b]) == ["why", "\u221212: cert lapsed", "\u22128: milestone overdue"]


def test_the_policy_section_refuses_bands_out_of_order_and_bad_weights():
    with pytest.raises(ValueError, match="watch_from"):
        HealthPolicy(healthy_from=40, watch_from=50)
    with pytest.raises(ValueError, match="weights"):
        HealthPolicy(weights={"cert_lapsed": 101})
    with pytest.raises(ValueError, match="coverage"):
        HealthPolicy(coverage={Tier.gold: 2})


def test_describe_names_the_partner():
    inp = HealthInput(partner_id="p1", partner_name="Acme", coverage=Coverage(tier=Tier.gold))
    assert describe(inp) == ("Health of Acme", "partner p1, run 1")


@pytest.mark.parametrize(("platinum", "over"), [(11, False), (12, False), (13, True)])
def test_cam_capacity_at_the_bar_of_a_full_cam(platinum, over):
    load = cam_load({Tier.platinum: platinum}, POLICY)
    assert (load.over is not None) == over and load.partners == platinum
    if over:
        assert load.over == f"a load of {platinum / 12:.2f} CAMs ({platinum} platinum \u00d7 0.083), more than 1.00"


@pytest.mark.parametrize(("n", "over"), [(49, False), (50, False), (51, True)])
def test_cam_capacity_at_the_bar_of_fifty_partners(n, over):
    roomy = POLICY.model_copy(update={"coverage": {t: 0.0 for t in Tier}})
    load = cam_load({Tier.silver: n}, roomy)
    assert (load.over is not None) == over
    if over:
        assert load.over == f"{n} active partners, more than the 50 a CAM can hold"


def test_cam_load_sums_the_tier_shares():
    load = cam_load({Tier.platinum: 6, Tier.gold: 10, Tier.registered: 100}, POLICY)
    assert (
        load.load == round(6 / 12 + 10 / 25, 6) and load.over == "116 active partners, more than the 50 a CAM can hold"
    )
