"""Partner health: the pure rules. A partner starts at 100 and every signal a journey reports
(journeys/<name>/health.py) takes off its policy weight times its severity; the score, its band,
what changed since the last evaluation, and when the change is an early warning. Every point is
a listed contribution, so the contributions always sum to the score."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.journeys import Coverage
from journeys.health.contract import HealthPolicy, Signal

JOURNEY = "health"
BASELINE = 100

REFRESH = "refresh"  # signal: evaluate now (a journey's event moved a signal)


class HealthActivity:
    EVALUATE = "health.evaluate"
    RECORD_ALERT = "health.record_alert"


class HealthState(StrEnum):
    """The journey itself: it watches the partner for as long as the partner exists."""

    watching = "watching"
    alerting = "alerting"  # an early-warning episode is open (its alert was sent)


class HealthBand(StrEnum):
    healthy = "healthy"
    watch = "watch"
    at_risk = "at_risk"


RANK = {HealthBand.healthy: 0, HealthBand.watch: 1, HealthBand.at_risk: 2}


class Contribution(BaseModel):
    key: str  # "baseline", "floor", or the signal's key
    kind: str
    points: int
    what: str

    def line(self) -> str:
        sign = "+" if self.points >= 0 else "\u2212"
        return f"{sign}{abs(self.points)}: {self.what}"


class Score(BaseModel):
    score: int
    band: HealthBand
    contributions: list[Contribution]


def band_of(score: int, policy: HealthPolicy) -> HealthBand:
    if score >= policy.healthy_from:
        return HealthBand.healthy
    if score >= policy.watch_from:
        return HealthBand.watch
    return HealthBand.at_risk


def score(signals: Iterable[Signal], policy: HealthPolicy) -> Score:
    """100, less each signal's weight times its severity (whole points), never under 0: the
    floor is a contribution of its own, so the contributions sum to the score."""
    parts = [Contribution(key="baseline", kind="baseline", points=BASELINE, what="baseline")]
    seen: set[str] = set()
    for s in sorted(signals, key=lambda s: s.key):
        points = round(policy.weights.get(s.kind, 0) * s.severity)  # type: ignore[call-overload]
        if points == 0 or s.key in seen:
            continue
        seen.add(s.key)
        parts.append(Contribution(key=s.key, kind=s.kind, points=-points, what=s.what))
    total = sum(p.points for p in parts)
    if total < 0:
        parts.append(Contribution(key="floor", kind="floor", points=-total, what="the score stops at 0"))
        total = 0
    return Score(score=total, band=band_of(total, policy), contributions=parts)


def changes(before: list[Contribution], after: list[Contribution]) -> list[Contribution]:
    """What moved the score: contributions that appeared (as they are) and those that went (their
    points given back); the floor and the baseline are not reasons."""
    old = {c.key: c for c in before if c.kind not in ("baseline", "floor")}
    new = {c.key: c for c in after if c.kind not in ("baseline", "floor")}
    moved = [c for k, c in new.items() if k not in old or old[k].points != c.points]
    moved += [
        Contribution(key=k, kind=c.kind, points=-c.points, what=f"no longer: {c.what}")
        for k, c in old.items()
        if k not in new or new[k].points != c.points
    ]
    return sorted(moved, key=lambda c: (c.points, c.key))


def alert_reason(
    score: int, band: HealthBand, previous_band: HealthBand | None, peak: int | None, policy: HealthPolicy
) -> str | None:
    """An early warning: the band got worse, or the score is `drop_points` or more under its peak
    of the last `drop_days`. None: nothing to warn about."""
    if previous_band is not None and RANK[band] > RANK[previous_band]:
        return f"health went from {previous_band.value} to {band.value} ({score})"
    if peak is not None and peak - score >= policy.drop_points:
        return f"health dropped {peak - score} points (from {peak} to {score}) within {policy.drop_days:g} days"
    return None


def episode_over(score: int, peak: int | None, policy: HealthPolicy) -> bool:
    """An episode ends once the partner is healthy again and no drop is open."""
    return band_of(score, policy) == HealthBand.healthy and (peak is None or peak - score < policy.drop_points)


def explain(reason: str, contributions: list[Contribution]) -> list[str]:
    """The lines of an alert: why, then every contribution but the baseline, worst first."""
    lines = [c.line() for c in sorted(contributions, key=lambda c: c.points) if c.kind != "baseline"]
    return [reason, *lines]


# --------------------------------------------------------------------------- messages


class HealthInput(BaseModel):
    partner_id: str
    partner_name: str = ""
    coverage: Coverage
    policy_version: int | None = None
    generation: int = Field(1, ge=1, description="the run's number (continue-as-new adds one)")
    episodes: int = Field(0, ge=0, description="early-warning episodes so far")
    alerting: bool = False  # an episode is open


class EvaluateInput(BaseModel):
    idempotency_key: str
    partner_id: str
    policy_version: int


class Evaluation(BaseModel):
    score: int
    band: HealthBand
    previous_band: HealthBand | None = None
    peak: int | None = None  # highest score within the drop window (before this one)
    changed: bool = False
    contributions: list[Contribution] = []
    changes: list[Contribution] = []


class AlertInput(BaseModel):
    idempotency_key: str
    partner_id: str
    episode: int
    opened: bool  # False: the episode closed
    reason: str = ""
    at: datetime


class HealthProgress(BaseModel):
    partner_id: str
    state: HealthState
    score: int | None
    band: HealthBand | None
    evaluations: int
    episodes: int


def describe(inp: HealthInput) -> tuple[str, str]:
    return f"Health of {inp.partner_name or inp.partner_id}", f"partner {inp.partner_id}, run {inp.generation}"
