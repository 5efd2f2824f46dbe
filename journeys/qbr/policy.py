"""The QBR journey's section of the program policy (`ProgramPolicy.qbr`): the cycle, the rules
by tier, the scorecard's weights and thresholds, the meeting's windows and tier reviews. Pure pydantic."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import Tier
from domain.policy_kit import MAX_DAYS, PlatformPolicy, PolicySection
from journeys.qbr.domain import Mode
from journeys.qbr.scoring import Metric


class QbrTierRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(description="cam_meeting (a QBR with the CAM), digital (scorecard by email), scorecard")
    every_quarters: int = Field(1, ge=1, le=4, description="the review's cadence: 1 quarterly, 2 semi-annual")
    target_minor: int = Field(
        0, ge=0, le=10**15, description="default quarterly revenue target, minor units of the program currency"
    )
    registrations_goal: int = Field(1, ge=0, le=10**6, description="deal registrations a quarter that score 100")
    certifications_required: int = Field(0, ge=0, le=1000, description="current certifications the tier needs")
    promote_min_score: float | None = Field(
        None, ge=0, le=100, allow_inf_nan=False, description="promotion needs this score (None: never promoted)"
    )
    promote_min_attainment: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)
    promote_min_registrations: int = Field(0, ge=0, le=10**6)
    demote_below_score: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)
    demote_below_attainment: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)


def _default_qbr_tiers() -> dict[Tier, QbrTierRules]:
    return {
        Tier.platinum: QbrTierRules(
            mode=Mode.cam_meeting,
            target_minor=50_000_000,
            registrations_goal=6,
            certifications_required=4,
            demote_below_score=45,
            demote_below_attainment=0.5,
        ),
        Tier.gold: QbrTierRules(
            mode=Mode.cam_meeting,
            target_minor=20_000_000,
            registrations_goal=4,
            certifications_required=2,
            promote_min_score=85,
            promote_min_attainment=1.5,
            promote_min_registrations=6,
            demote_below_score=40,
            demote_below_attainment=0.4,
        ),
        Tier.silver: QbrTierRules(
            mode=Mode.digital,
            every_quarters=2,
            target_minor=5_000_000,
            registrations_goal=2,
            certifications_required=1,
            promote_min_score=80,
            promote_min_attainment=1.5,
            promote_min_registrations=4,
            demote_below_score=30,
        ),
        Tier.registered: QbrTierRules(
            mode=Mode.scorecard,
            target_minor=1_000_000,
            registrations_goal=1,
            promote_min_score=80,
            promote_min_attainment=1.5,
            promote_min_registrations=2,
        ),
    }


def _default_qbr_weights() -> dict[Metric, float]:
    return {
        Metric.revenue: 30,
        Metric.pipeline: 10,
        Metric.registrations: 10,
        Metric.win_rate: 10,
        Metric.certifications: 15,
        Metric.mdf: 10,
        Metric.onboarding: 5,
        Metric.responsiveness: 10,
        Metric.leads: 10,  # scored only for partners offered leads (absent otherwise: re-weighted)
    }


class QbrPolicy(PolicySection):
    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field("UTC", max_length=60, description="the program's time zone (quarters start there)")
    cycle_months: list[int] = Field(
        default_factory=lambda: [1, 4, 7, 10],
        min_length=1,
        max_length=12,
        description="months whose first day starts a QBR cycle (the Temporal Schedule), in the time zone",
    )
    cycle_window: int = Field(20, ge=1, le=1000, description="partners' QBRs being prepared at once by a cycle")
    cycle_page_size: int = Field(
        100, ge=1, le=1000, description="partners per page (a cycle continues as new per page)"
    )
    tiers: dict[Tier, QbrTierRules] = Field(default_factory=_default_qbr_tiers)
    weights: dict[Metric, float] = Field(default_factory=_default_qbr_weights)
    healthy_from: float = Field(70, ge=0, le=100, allow_inf_nan=False, description="band cut-off: healthy")
    watch_from: float = Field(45, ge=0, le=100, allow_inf_nan=False, description="band cut-off: watch (else at risk)")
    pipeline_coverage: float = Field(1.0, gt=0, le=100, allow_inf_nan=False, description="pipeline goal / target")
    win_rate_goal: float = Field(0.5, gt=0, le=1, allow_inf_nan=False)
    mdf_utilization_goal: float = Field(0.9, gt=0, le=1, allow_inf_nan=False)
    lead_acceptance_goal: float = Field(
        0.6, gt=0, le=1, allow_inf_nan=False, description="share of lead offers accepted that scores 100"
    )
    lead_accept_hours_goal: float = Field(
        8, gt=0, le=24 * 366, allow_inf_nan=False, description="median hours from a lead offer to its acceptance"
    )
    lead_conversion_goal: float = Field(
        0.3, gt=0, le=1, allow_inf_nan=False, description="share of accepted leads converted that scores 100"
    )
    overdue_penalty: float = Field(25, ge=0, le=100, allow_inf_nan=False, description="points per overdue item")
    schedule_deadline_days: float = Field(
        21, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="a CAM QBR not scheduled by then alerts the CAM"
    )
    meeting_window_days: float = Field(
        80,
        gt=0,
        le=MAX_DAYS,
        allow_inf_nan=False,
        description="a CAM QBR not held (or its notes not recorded) this long after it opened closes as missed",
    )
    pre_read_hours: float = Field(48, gt=0, le=24 * 60, allow_inf_nan=False, description="pre-read before the meeting")
    notes_due_days: float = Field(
        2, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="after the meeting: the CAM is reminded of the notes"
    )
    action_reminder_days: float = Field(
        3, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="an open action item is reminded this long before due"
    )
    action_escalation_days: float = Field(
        7,
        gt=0,
        le=MAX_DAYS,
        allow_inf_nan=False,
        description="overdue this long: escalated one level (partner, then CAM, then ops)",
    )
    review_every_quarters: int = Field(1, ge=1, le=4, description="tier reviews: 1 quarterly, 4 annual")
    remediation_days: float = Field(
        90, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="an approved demotion waits this long for recovery"
    )

    @model_validator(mode="after")
    def _check(self) -> QbrPolicy:
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"qbr.tiers: rules missing for {', '.join(missing)}")
        if any(not 1 <= m <= 12 for m in self.cycle_months) or len(set(self.cycle_months)) != len(self.cycle_months):
            raise ValueError("qbr.cycle_months: distinct months 1 to 12")
        if self.watch_from > self.healthy_from:
            raise ValueError("qbr.watch_from must not be above qbr.healthy_from")
        if sum(self.weights.values()) <= 0 or any(w < 0 for w in self.weights.values()):
            raise ValueError("qbr.weights: weights must be non-negative with a positive sum")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"qbr.time_zone: unknown time zone {self.time_zone!r}") from err
        return self

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        return {
            "schedule_deadline_days": self.schedule_deadline_days,
            "meeting_window_days": self.meeting_window_days,
            "action_escalation_days": 2 * self.action_escalation_days + self.action_reminder_days,
            "remediation_days": self.remediation_days,
        }


SECTION = QbrPolicy
