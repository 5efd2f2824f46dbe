"""The re-engagement rules of a dark partner, at the bars and on both sides: when a partner is
dark, when the next email goes, when ops is told, that the spell ends as soon as the partner acts
(or a CAM takes it on), and which next step each email carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeys.health.domain import (
    PORTAL_STEP,
    Contribution,
    ReengageAction,
    Reengagement,
    emails_now,
    is_dark,
    next_step,
    reengage_next,
    reengaged,
)

pytestmark = pytest.mark.unit
T0 = datetime(2027, 1, 1, tzinfo=UTC)
DARK, EVERY = timedelta(days=30), timedelta(days=7)


def step(r: Reengagement, now: datetime, *, last_active=T0, covered=False, emails=3):
    action = reengage_next(
        r, last_active=last_active, covered=covered, now=now, dark_after=DARK, every=EVERY, emails=emails
    )
    return action, reengaged(r, action, last_active=last_active, now=now, emails=emails)


def test_dark_at_the_bar():
    assert not is_dark(T0, T0 + DARK - timedelta(seconds=1), DARK)
    assert is_dark(T0, T0 + DARK, DARK)


def test_the_whole_sequence_emails_then_ops_then_the_partner_acts():
    r = Reengagement()
    assert step(r, T0 + DARK - timedelta(seconds=1))[0] == ReengageAction.none
    assert step(r, T0 + DARK, last_active=None)[0] == ReengageAction.none  # nothing known yet
    action, opened = step(r, T0 + DARK)
    assert action == ReengageAction.open and opened.sent == 1 and opened.spell == 1 and emails_now(r, opened)
    assert opened.since == T0
    now = T0 + DARK
    assert step(opened, now + EVERY - timedelta(seconds=1))[0] == ReengageAction.none
    action, second = step(opened, now + EVERY)
    assert action == ReengageAction.email and second.sent == 2 and emails_now(opened, second)
    action, third = step(second, now + 2 * EVERY)
    assert (action, third.sent) == (ReengageAction.email, 3)
    action, told = step(third, now + 3 * EVERY)
    assert action == ReengageAction.escalate and told.escalated and told.sent == 3 and not emails_now(third, told)
    assert step(told, now + 10 * EVERY)[0] == ReengageAction.none  # ops once; the spell waits for the partner
    action, closed = step(told, now + 10 * EVERY, last_active=T0 + timedelta(seconds=1))
    assert action == ReengageAction.close and not closed.open and not closed.escalated and closed.spell == 1
    # Dark again later: a new spell, numbered on.
    action, again = step(closed, T0 + timedelta(seconds=1) + DARK, last_active=T0 + timedelta(seconds=1))
    assert (action, again.spell, again.sent) == (ReengageAction.open, 2, 1) and emails_now(closed, again)


def test_a_cam_ends_it_and_a_covered_partner_never_starts_one():
    _, opened = step(Reengagement(), T0 + DARK)
    assert step(opened, T0 + DARK, covered=True)[0] == ReengageAction.close
    assert step(Reengagement(), T0 + 5 * DARK, covered=True)[0] == ReengageAction.none


def test_no_emails_in_the_policy_tells_ops_after_one_interval():
    action, opened = step(Reengagement(), T0 + DARK, emails=0)
    assert action == ReengageAction.open and opened.sent == 0 and not emails_now(Reengagement(), opened)
    assert step(opened, T0 + DARK + EVERY, emails=0)[0] == ReengageAction.escalate


def c(kind: str, points: int, key: str = "k", what: str = "X") -> Contribution:
    return Contribution(key=key, kind=kind, points=points, what=what)


def test_the_next_step_is_the_costliest_signal_the_partner_can_act_on():
    base = c("baseline", 100, "baseline", "baseline")
    assert next_step([base]) == PORTAL_STEP
    assert next_step([base, c("floor", 5, "floor")]) == PORTAL_STEP
    picked = next_step([base, c("mdf_unused", -6, what="fund Q1"), c("cert_lapsed", -12, what="cert NA lapsed")])
    assert picked.kind == "cert_lapsed" and picked.text == "Renew your certification: cert NA lapsed."
    tie = next_step([c("qbr_action_overdue", -6, "b"), c("mdf_unused", -6, "a", "fund Q1")])
    assert tie.kind == "mdf_unused"  # a tie goes to the order of STEPS
    assert next_step([c("unknown", -50), c("deal_velocity_low", -10)]).kind == "deal_velocity_low"
