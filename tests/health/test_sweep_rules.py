"""The sweep's pure rules (journeys/health/domain.py): which events a pass takes, where its
cursor goes (never past an event that may still commit), when the entity workflow is told, and
the policy's bounds of the sweep."""

from __future__ import annotations

import pytest

from journeys.health.contract import HealthPolicy
from journeys.health.domain import (
    Contribution,
    Evaluation,
    HealthBand,
    advance,
    health_changed,
    merged,
    take,
    warns,
)

pytestmark = pytest.mark.unit

TYPES = frozenset({"certification.lapsed", "deal.won"})


def test_ranges_merge_when_they_overlap_or_touch():
    assert merged([(5, 6), (1, 2), (3, 3), (8, 9), (9, 12)]) == [(1, 3), (5, 6), (8, 12)]
    assert merged([]) == []


def test_a_pass_takes_at_most_its_batch_of_partners_in_seq_order():
    rows = [(1, "deal.won", "a"), (2, "partner.enrolled", "z"), (3, "deal.won", "a"), (4, "deal.won", "b")]
    rows += [(5, "certification.lapsed", "c"), (6, "deal.won", "b")]
    b = take(rows, TYPES, 2, read_all=True)
    assert b.partners == {"a": 3, "b": 4}  # each partner's newest event of the batch
    assert b.processed == [1, 2, 3, 4]  # another type is handled as it is read
    assert b.first_unprocessed == 5  # c is the third partner: the next pass
    whole = take(rows, TYPES, 3, read_all=True)
    assert whole.partners == {"a": 3, "b": 6, "c": 5} and whole.first_unprocessed is None
    cut = take(rows, TYPES, 3, read_all=False)  # the read stopped at its limit: what follows is unknown
    assert cut.first_unprocessed == 7
    assert take([], TYPES, 3, read_all=False).first_unprocessed is None


def test_the_cursor_passes_handled_events_and_settled_gaps_only():
    # 11..14 handled; 15 missing but written after `settled` (its transaction may still commit).
    assert advance(10, [], [11, 12, 13, 14, 16], None, settled=13) == (14, [(16, 16)])
    # Once settled past it, the gap is a rolled-back seq: passed, with what was seen above it.
    assert advance(14, [(16, 16)], [17], None, settled=16) == (17, [])
    # An event left for the next pass holds the cursor under it.
    assert advance(10, [], [11, 12], 13, settled=20) == (12, [])
    assert advance(10, [(13, 14)], [11], 15, settled=20) == (14, [])
    # Never back.
    assert advance(10, [], [], None, settled=3) == (10, [])


def _ev(score: int, band: HealthBand, previous: HealthBand | None, peak: int | None) -> Evaluation:
    cs = [Contribution(key="c1", kind="cert_lapsed", points=score - 100, what="certification X lapsed")]
    return Evaluation(score=score, band=band, previous_band=previous, peak=peak, changed=True, changes=cs)


def test_the_entity_is_told_only_what_may_open_or_close_an_episode():
    policy = HealthPolicy()  # drop 15 points; healthy from 70
    worse = _ev(60, HealthBand.watch, HealthBand.healthy, 72)
    small = _ev(88, HealthBand.healthy, HealthBand.healthy, 100)
    assert warns(worse, open_episode=False, policy=policy)
    assert not warns(small, open_episode=False, policy=policy)
    assert not warns(worse, open_episode=True, policy=policy)  # the episode is open: its alert went
    recovered = _ev(95, HealthBand.healthy, HealthBand.watch, 96)
    assert warns(recovered, open_episode=True, policy=policy)  # it may close


def test_the_changed_event_lists_the_changes():
    e = health_changed("p1", _ev(88, HealthBand.healthy, None, None))
    assert (e.partner_id, e.score, e.band, e.previous_band) == ("p1", 88, "healthy", None)
    assert e.changes == ["\u221212: certification X lapsed"]
    assert health_changed("p1", _ev(60, HealthBand.watch, HealthBand.healthy, 72)).previous_band == "healthy"


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("sweep_seconds", 0.1, "sweep_seconds"),
        ("sweep_seconds", -1, "sweep_seconds"),
        ("sweep_seconds", 3601, "sweep_seconds"),
        ("sweep_seconds", float("nan"), "sweep_seconds"),
        ("sweep_batch", 0, "sweep_batch"),
        ("sweep_batch", 5001, "sweep_batch"),
    ],
)
def test_the_policy_refuses_a_sweep_out_of_bounds(field, value, match):
    with pytest.raises(ValueError, match=match):
        HealthPolicy(**{field: value})


def test_the_policy_takes_a_sweep_off_or_at_its_bounds():
    assert HealthPolicy(sweep_seconds=0).sweep_seconds == 0
    assert HealthPolicy(sweep_seconds=0.5, sweep_batch=5000).sweep_batch == 5000
