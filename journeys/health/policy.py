"""Partner health's section of the program policy (`ProgramPolicy.health`): the points each
kind of signal takes, the bands, the early-warning bars, how often a partner is evaluated and
how much of a CAM each tier takes. Pure pydantic."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from domain.enums import Tier
from domain.policy_kit import MAX_DAYS, PlatformPolicy, PolicySection

MIN_SWEEP_SECONDS = 0.5  # a shorter pass would only spin
DAYS = float(MAX_DAYS)  # the longest window the section accepts, in policy days


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


class HealthPolicy(PolicySection):
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
    sweep_seconds: float = Field(
        5,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="the health sweep reads the events published since its last pass this often and re-scores "
        "their partners (0: no sweep, every such event signals the partner's health workflow instead)",
    )
    sweep_batch: int = Field(500, ge=1, le=5000, description="partners the sweep scores at most per pass")
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
    dark_days: float = Field(
        30,
        gt=0,
        le=DAYS,
        allow_inf_nan=False,
        description="dark: no activity of the partner (an action of its own, a portal sign-in) for this many days",
    )
    reengage_emails: int = Field(
        3, ge=0, le=10, description="re-engagement emails a dark partner without a CAM gets before ops is told"
    )
    reengage_every_days: float = Field(
        7, gt=0, le=DAYS, allow_inf_nan=False, description="days between those emails (and before ops is told)"
    )
    dark_rate_target: float = Field(
        0.2, ge=0, le=1, allow_inf_nan=False, description="the program's target: dark partners under this share"
    )
    active_rate_target: float = Field(
        0.5,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="the program's target: partners with a deal registered within velocity_days, at least this share",
    )

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        """Its one timer, the wait between evaluations (in seconds, whatever a policy day is)."""
        return {"evaluate_seconds": self.evaluate_seconds / platform.day_seconds}

    @model_validator(mode="after")
    def _bands_in_order(self) -> HealthPolicy:
        if self.watch_from > self.healthy_from:
            raise ValueError("health.watch_from must not be above health.healthy_from")
        if any(w < 0 or w > 100 for w in self.weights.values()):
            raise ValueError("health.weights: each weight is 0..100 points")
        if 0 < self.sweep_seconds < MIN_SWEEP_SECONDS:
            raise ValueError(f"health.sweep_seconds: 0 (no sweep) or at least {MIN_SWEEP_SECONDS:g} s")
        if not all(0 <= c <= 1 for c in self.coverage.values()):  # NaN too
            raise ValueError("health.coverage: each share is 0..1 of a CAM")
        return self


SECTION = HealthPolicy
