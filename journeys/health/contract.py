"""What other journeys and the platform may use of partner health: the `Signal` each journey's
`health_signals` reader returns (journeys/<name>/health.py, named by its manifest) and the
policy section `health` (weights, bands, thresholds, cadence, CAM coverage weights)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.enums import Tier

DAYS = 3650.0  # the longest window the section accepts, in policy days


class Signal(BaseModel):
    """One reason a partner's health moves, as a journey sees it now. `kind` picks its weight in
    the policy (`health.weights`); `severity` (0..1] scales it (e.g. how far the win rate is under
    its goal); `key` is stable while the reason lasts (so a change lists it once)."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    key: str = Field(min_length=1, max_length=200)
    what: str = Field(min_length=1, max_length=300, description="in words, e.g. certification X lapsed on D")
    severity: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    at: datetime | None = None


class SignalKind(StrEnum):
    """The kinds of signal the journeys give (a new kind is added here with its default weight)."""

    milestone_overdue = "milestone_overdue"
    cert_expiring = "cert_expiring"
    cert_lapsed = "cert_lapsed"
    deal_velocity_low = "deal_velocity_low"
    win_rate_low = "win_rate_low"
    mdf_unused = "mdf_unused"
    qbr_action_overdue = "qbr_action_overdue"


DEFAULT_WEIGHTS = {
    SignalKind.milestone_overdue: 8,
    SignalKind.cert_expiring: 5,
    SignalKind.cert_lapsed: 12,
    SignalKind.deal_velocity_low: 10,
    SignalKind.win_rate_low: 10,
    SignalKind.mdf_unused: 6,
    SignalKind.qbr_action_overdue: 6,
}


def _default_weights() -> dict[SignalKind, int]:
    return dict(DEFAULT_WEIGHTS)


def _default_coverage() -> dict[Tier, float]:
    return {Tier.platinum: 1 / 12, Tier.gold: 1 / 25, Tier.silver: 1 / 40, Tier.registered: 0.0}


class HealthPolicy(BaseModel):
    """Partner health: points lost per signal kind, the bands, the early-warning bars, how often a
    partner's health is evaluated, and how much of a CAM each tier takes."""

    watch: bool = Field(False, description="start health-{partner} with every partner enrolled (the rollout switch)")
    weights: dict[SignalKind, int] = Field(
        default_factory=_default_weights, description="points a signal of each kind takes off 100 (times its severity)"
    )
    healthy_from: int = Field(70, ge=0, le=100, description="band cut-off: healthy at or above")
    watch_from: int = Field(45, ge=0, le=100, description="band cut-off: watch at or above (else at risk)")
    drop_points: int = Field(15, ge=1, le=100, description="an alert when the score fell this much ...")
    drop_days: float = Field(14, gt=0, le=DAYS, allow_inf_nan=False, description="... within this many days")
    trend_days: float = Field(90, gt=0, le=DAYS, allow_inf_nan=False, description="the trend shown and kept")
    evaluate_seconds: float = Field(
        30, ge=0.01, le=3600, allow_inf_nan=False, description="a partner's health is re-evaluated this often"
    )
    evaluations_per_run: int = Field(100, ge=1, le=10_000, description="evaluations before continue-as-new")
    velocity_days: float = Field(90, gt=0, le=DAYS, allow_inf_nan=False, description="deal registrations window")
    velocity_goal: int = Field(1, ge=0, le=10_000, description="registrations expected in that window")
    win_rate_goal: float = Field(0.3, ge=0, le=1, allow_inf_nan=False, description="won / (won + lost) expected")
    mdf_unused_days: float = Field(
        30, ge=0, le=DAYS, allow_inf_nan=False, description="a fund expiring this soon with money left is a signal"
    )
    cert_expiring_days: float = Field(30, ge=0, le=DAYS, allow_inf_nan=False, description="a certification expiring")
    coverage: dict[Tier, float] = Field(
        default_factory=_default_coverage, description="share of one CAM a partner of each tier takes"
    )
    max_partners_per_cam: int = Field(50, ge=1, le=10_000, description="active partners a CAM can hold")

    @model_validator(mode="after")
    def _bands_in_order(self) -> HealthPolicy:
        if self.watch_from > self.healthy_from:
            raise ValueError("health.watch_from must not be above health.healthy_from")
        if any(w < 0 or w > 100 for w in self.weights.values()):
            raise ValueError("health.weights: each weight is 0..100 points")
        if not all(0 <= c <= 1 for c in self.coverage.values()):  # NaN too
            raise ValueError("health.coverage: each share is 0..1 of a CAM")
        return self


# --------------------------------------------------------------------------- CAM capacity


class CamLoad(BaseModel):
    """A CAM's portfolio against the policy: partners by tier, the share of one CAM they take."""

    partners: int = Field(description="partners assigned to the CAM")
    by_tier: dict[Tier, int]
    load: float = Field(description="sum of each partner's tier share (health.coverage): 1.0 is a full CAM")
    max_partners: int = Field(description="health.max_partners_per_cam")
    over: str | None = Field(None, description="why the portfolio is beyond capacity (None: within)")


def cam_load(by_tier: dict[Tier, int], policy: HealthPolicy) -> CamLoad:
    """The load of a portfolio of `by_tier` partners; `over` names the figures when it is more
    than one CAM (`coverage` shares summed) or more than `max_partners_per_cam` partners."""
    counts = {t: by_tier.get(t, 0) for t in Tier}
    partners = sum(counts.values())
    load = round(sum(n * policy.coverage.get(t, 0.0) for t, n in counts.items()), 6)
    over = None
    if partners > policy.max_partners_per_cam:
        over = f"{partners} active partners, more than the {policy.max_partners_per_cam} a CAM can hold"
    elif load > 1:
        parts = ", ".join(f"{n} {t.value} \u00d7 {policy.coverage.get(t, 0.0):.3f}" for t, n in counts.items() if n)
        over = f"a load of {load:.2f} CAMs ({parts}), more than 1.00"
    return CamLoad(partners=partners, by_tier=counts, load=load, max_partners=policy.max_partners_per_cam, over=over)
