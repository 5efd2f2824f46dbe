"""The program policy: every window, SLA, threshold and cadence lives here.

Durations are expressed in policy *days*; `day_seconds` says how long one policy day is
(86400 in production). Tests and demos shrink it so a 90-day journey runs in seconds.
Workflows never hard-code a duration: they read the policy once (through an activity)
and carry it.

`ProgramPolicy` is assembled when this module is imported: the platform's sections
(domain/policy_kit.py) and one section per installed journey, its `journeys/<name>/policy.py`
(domain/installed.py). Journey code reads its own section typed, `policy.section(DealPolicy)`,
or by name, `policy.deal` (typed Any). Adding a journey adds no line here."""

from __future__ import annotations

<<<<<<< HEAD
from typing import TYPE_CHECKING

from pydantic import BaseModel

from domain import installed
from domain.policy_kit import (
    MAX_DAYS,
    MAX_TIMER,
    LimitsPolicy,
    OpsPolicy,
    PlatformPolicy,
    PolicySection,
    TierRules,
    WebhookPolicy,
    assemble,
)

__all__ = [
    "MAX_DAYS",
    "MAX_TIMER",
    "SECTIONS",
    "LimitsPolicy",
    "OpsPolicy",
    "PlatformPolicy",
    "PolicySection",
    "ProgramPolicy",
    "TierRules",
    "VersionedPolicy",
    "WebhookPolicy",
]

# Each installed journey's section model, by journey name (its field of ProgramPolicy).
SECTIONS: dict[str, type[PolicySection]] = {name: module.SECTION for name, module in installed.parts("policy")}

if TYPE_CHECKING:
    ProgramPolicy = PlatformPolicy
else:
    ProgramPolicy = assemble(SECTIONS)
=======
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import Tier
from domain.types import Name, at_most
from journeys.health.contract import HealthPolicy
from journeys.qbr.domain import Metric, Mode

MAX_DAYS = 3650  # no window, SLA or offset of the program is longer than ten years
MAX_TIMER = timedelta(days=3 * MAX_DAYS * 10)  # the longest wait a journey may schedule (dry run)


class MilestoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="stable identifier")
    title: Annotated[Name, Field(max_length=120), at_most(120)]  # partner_milestones.title holds 120
    due_day: float = Field(
        gt=0, le=MAX_DAYS, allow_inf_nan=False, description="due offset from enrolment, in policy days"
    )
    required_for: list[Tier] = Field(description="tiers for which the milestone is required")


class OnboardingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_days: float = Field(90, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="length of the activation plan")
    escalation_days: float = Field(
        14, gt=0, description="days a milestone may be overdue before the CAM (or ops) is alerted"
    )
    milestones: list[MilestoneSpec]

    @model_validator(mode="after")
    def _check(self) -> OnboardingPolicy:
        keys = [m.key for m in self.milestones]
        if len(keys) != len(set(keys)):
            raise ValueError("onboarding.milestones: milestone keys must be unique")
        if not self.milestones:
            raise ValueError("onboarding.milestones: at least one milestone is needed")
        for m in self.milestones:
            if m.due_day > self.plan_days:
                raise ValueError(
                    f"onboarding.milestones: milestone '{m.key}' is due on day {m.due_day}, "
                    f"after the end of the {self.plan_days}-day plan"
                )
        return self

    def required(self, tier: Tier) -> list[MilestoneSpec]:
        return [m for m in self.milestones if tier in m.required_for]


class TierRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    has_cam: bool = Field(description="a CAM is required and receives escalations")
    cam_on_every_alert: bool = Field(False, description="the CAM is copied on every partner nudge")


def _default_tiers() -> dict[Tier, TierRules]:
    return {
        Tier.platinum: TierRules(has_cam=True, cam_on_every_alert=True),
        Tier.gold: TierRules(has_cam=True),
        Tier.silver: TierRules(has_cam=False),
        Tier.registered: TierRules(has_cam=False),
    }


def _default_onboarding() -> OnboardingPolicy:
    all_tiers = list(Tier)
    return OnboardingPolicy(
        plan_days=90,
        escalation_days=14,
        milestones=[
            MilestoneSpec(key="portal_access", title="Log in to the partner portal", due_day=7, required_for=all_tiers),
            MilestoneSpec(
                key="first_training", title="Complete the first sales training", due_day=30, required_for=all_tiers
            ),
            MilestoneSpec(
                key="first_certification",
                title="Earn a first certification",
                due_day=60,
                required_for=[Tier.platinum, Tier.gold, Tier.silver],
            ),
            MilestoneSpec(key="first_deal", title="Register a first deal", due_day=75, required_for=all_tiers),
            MilestoneSpec(
                key="business_plan",
                title="Agree a joint business plan",
                due_day=45,
                required_for=[Tier.platinum, Tier.gold],
            ),
        ],
    )


class TierDealRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_approve: bool = Field(description="deals inside policy are approved without a human")
    auto_approve_max_minor: int = Field(
        0, ge=0, le=10**15, description="largest auto-approved amount, in minor units of the program currency"
    )
    protection_days: float = Field(
        gt=0, le=MAX_DAYS, allow_inf_nan=False, description="protection window of an approved deal"
    )


def _default_deal_tiers() -> dict[Tier, TierDealRules]:
    return {
        Tier.platinum: TierDealRules(auto_approve=False, protection_days=180),
        Tier.gold: TierDealRules(auto_approve=False, protection_days=120),
        Tier.silver: TierDealRules(auto_approve=True, auto_approve_max_minor=5_000_000, protection_days=90),
        Tier.registered: TierDealRules(auto_approve=True, auto_approve_max_minor=1_000_000, protection_days=60),
    }


def _default_expiry_reminder_days() -> list[float]:
    return [14, 3]  # ints, as before: the JSON of the defaults stays [14, 3]


def _default_cert_reminder_days() -> list[float]:
    return [60, 30, 7]


class DealPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="currency of the thresholds")
    tiers: dict[Tier, TierDealRules] = Field(default_factory=_default_deal_tiers)
    approval_sla_days: float = Field(
        2, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="pending this long: reminder to the approver"
    )
    escalation_days: float = Field(
        4, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="pending this long: escalation to ops"
    )
    expiry_reminder_days: list[float] = Field(
        default_factory=_default_expiry_reminder_days, description="reminders this many days before expiry"
    )
    max_extensions: int = Field(2, ge=0, le=100)
    max_extension_days: float = Field(30, gt=0, le=MAX_DAYS, allow_inf_nan=False)
    stall_days: float = Field(
        21, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="a stage unchanged this long alerts the CAM (or ops)"
    )
    decision_link_days: float = Field(
        7, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="validity of one-click decision links"
    )

    @model_validator(mode="after")
    def _check(self) -> DealPolicy:
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"deal.tiers: rules missing for {', '.join(missing)}")
        if self.escalation_days <= self.approval_sla_days:
            raise ValueError("deal.escalation_days must be longer than deal.approval_sla_days")
        _check_offsets("deal.expiry_reminder_days", self.expiry_reminder_days)
        return self


def _check_offsets(field: str, offsets: list[float]) -> None:
    if len(offsets) > 20:
        raise ValueError(f"{field}: at most 20 offsets")
    if any(not (0 < d <= MAX_DAYS) for d in offsets):  # NaN fails the comparison too
        raise ValueError(f"{field}: offsets must be positive days, at most {MAX_DAYS}")


class CertPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reminder_days: list[float] = Field(
        default_factory=_default_cert_reminder_days,
        description="reminders to the person and the partner, days before expiry",
    )
    cam_alert_days: float = Field(
        30, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="CAM tiers: the CAM is alerted this many days before"
    )
    grace_days: float = Field(
        0,
        ge=0,
        le=MAX_DAYS,
        allow_inf_nan=False,
        description="after expiry, days before the entitlements are restricted",
    )
    lapse_action: Literal["refuse", "review"] = Field(
        "refuse", description="a deal in a lapsed certification's category is refused, or held for CAM review"
    )

    @model_validator(mode="after")
    def _check(self) -> CertPolicy:
        _check_offsets("cert.reminder_days", self.reminder_days)
        return self


# ------------------------------------------------------------------ market development funds


class ProofKind(StrEnum):
    invoice = "invoice"
    photo = "photo"
    attendee_list = "attendee_list"


class MdfActivityType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="stable identifier")
    title: Annotated[Name, Field(max_length=120), at_most(120)]
    proof: list[ProofKind] = Field(min_length=1, description="proof of performance its claim needs")
    partner_share_percent: float = Field(
        50, ge=0, lt=100, allow_inf_nan=False, description="the partner's matching share of the cost"
    )
    pre_approved: bool = Field(False, description="long-tail partners' requests up to the limit need no human")


class ApprovalLevel(BaseModel):
    """A level of approval: needed for amounts above `above_minor` (the first level always)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="e.g. cam, channel_marketing, finance")
    above_minor: int = Field(ge=0, le=10**15, description="needed when the amount is above this")
    sla_days: float = Field(2, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="pending this long: reminder")
    escalation_days: float = Field(
        4, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="pending this long: escalation to ops"
    )


def _default_mdf_types() -> list[MdfActivityType]:
    return [
        MdfActivityType(
            key="event",
            title="Event or trade show",
            proof=[ProofKind.invoice, ProofKind.photo, ProofKind.attendee_list],
            partner_share_percent=50,
        ),  # fmt: skip
        MdfActivityType(
            key="webinar",
            title="Webinar",
            proof=[ProofKind.invoice, ProofKind.attendee_list],
            partner_share_percent=50,
            pre_approved=True,
        ),  # fmt: skip
        MdfActivityType(
            key="digital_ads",
            title="Digital advertising",
            proof=[ProofKind.invoice],
            partner_share_percent=50,
            pre_approved=True,
        ),  # fmt: skip
        MdfActivityType(
            key="print", title="Print collateral", proof=[ProofKind.invoice, ProofKind.photo], partner_share_percent=25
        ),  # fmt: skip
    ]


def _default_mdf_levels() -> list[ApprovalLevel]:
    return [
        ApprovalLevel(name="cam", above_minor=0),
        ApprovalLevel(name="channel_marketing", above_minor=500_000),
        ApprovalLevel(name="finance", above_minor=2_500_000),
    ]


def _default_mdf_allocations() -> dict[Tier, int]:
    return {Tier.platinum: 5_000_000, Tier.gold: 2_500_000, Tier.silver: 1_000_000, Tier.registered: 250_000}


def _default_mdf_auto() -> dict[Tier, int]:
    return {Tier.platinum: 0, Tier.gold: 0, Tier.silver: 200_000, Tier.registered: 100_000}


def _default_mdf_types_allowed() -> list[str]:
    return ["application/pdf", "image/png", "image/jpeg", "text/csv"]


def _default_expiry_warning_days() -> list[float]:
    return [30, 7]


def _default_claim_reminder_days() -> list[float]:
    return [14, 3]


class MdfPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="the program currency of every fund")
    period: Literal["month", "quarter", "half", "year"] = Field(
        "quarter", description="one fund per partner and period"
    )
    time_zone: str = Field("UTC", max_length=60, description="IANA time zone of period boundaries and cut-offs")
    allocations: dict[Tier, int] = Field(
        default_factory=_default_mdf_allocations, description="allocation per period, minor units, by tier"
    )
    accrual_percent: float = Field(
        1, ge=0, le=100, allow_inf_nan=False, description="share of closed-won revenue of registered deals accrued"
    )
    accrual_cap_minor: int = Field(1_000_000, ge=0, le=10**15, description="most accrued per partner and period")
    exchange_rates: dict[str, str] = Field(
        default_factory=dict,
        description="units of the program currency per unit of another currency, set by ops, e.g. {'EUR': '1.08'}",
    )
    activity_types: list[MdfActivityType] = Field(default_factory=_default_mdf_types)
    approval_levels: list[ApprovalLevel] = Field(default_factory=_default_mdf_levels)
    auto_approve_max_minor: dict[Tier, int] = Field(
        default_factory=_default_mdf_auto, description="tiers without a CAM: pre-approved types up to this"
    )
    pre_approval_days: float = Field(
        60, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="an approved activity must start within this"
    )
    max_activity_days: float = Field(180, gt=0, le=MAX_DAYS, allow_inf_nan=False)
    claim_window_days: float = Field(
        45, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="after the activity's end, days to claim"
    )
    claim_reminder_days: list[float] = Field(
        default_factory=_default_claim_reminder_days, description="reminders this many days before the window ends"
    )
    pause_window_when_returned: bool = Field(False, description="the claim window stops while the partner adds proof")
    expiry_grace_days: float = Field(
        15, ge=0, le=MAX_DAYS, allow_inf_nan=False, description="after period end, days before unreserved funds expire"
    )
    expiry_warning_days: list[float] = Field(
        default_factory=_default_expiry_warning_days, description="warnings this many days before funds expire"
    )
    payment_cutoff_day: int | None = Field(
        15, ge=1, le=28, description="approved claims become due for payment on this day of the month"
    )
    audit_days: float = Field(365, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="clawbacks allowed this long")
    max_files: int = Field(10, ge=1, le=100)
    max_file_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_total_bytes: int = Field(25 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    allowed_types: list[str] = Field(default_factory=_default_mdf_types_allowed, description="checked by content")
    decision_link_days: float = Field(7, gt=0, le=MAX_DAYS, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> MdfPolicy:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"mdf.time_zone: {self.time_zone!r} is not an IANA time zone") from err
        by_tiers = (("allocations", self.allocations), ("auto_approve_max_minor", self.auto_approve_max_minor))
        for field, by_tier in by_tiers:
            missing = [t.value for t in Tier if t not in by_tier]
            if missing:
                raise ValueError(f"mdf.{field}: missing for {', '.join(missing)}")
            if any(not 0 <= v <= 10**15 for v in by_tier.values()):
                raise ValueError(f"mdf.{field}: amounts are minor units from 0 to 10^15")
        keys = [t.key for t in self.activity_types]
        if not keys or len(keys) != len(set(keys)):
            raise ValueError("mdf.activity_types: at least one, with unique keys")
        levels = self.approval_levels
        if not levels or levels[0].above_minor != 0:
            raise ValueError("mdf.approval_levels: the first level applies to every amount (above_minor 0)")
        if any(b.above_minor <= a.above_minor for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError("mdf.approval_levels: above_minor must increase from level to level")
        if len({lv.name for lv in levels}) != len(levels):
            raise ValueError("mdf.approval_levels: names must be unique")
        for lv in levels:
            if lv.escalation_days <= lv.sla_days:
                raise ValueError(f"mdf.approval_levels: {lv.name}: escalation_days must be longer than sla_days")
        for code, rate in self.exchange_rates.items():
            if not (len(code) == 3 and code.isascii() and code.isupper() and code.isalpha()) or code == self.currency:
                raise ValueError(f"mdf.exchange_rates: {code!r} is not another ISO 4217 code")
            try:
                ok = 0 < Decimal(rate) < 10**6
            except (InvalidOperation, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"mdf.exchange_rates: {code}: {rate!r} is not a positive decimal rate")
        if self.max_file_bytes > self.max_total_bytes:
            raise ValueError("mdf.max_file_bytes must not exceed mdf.max_total_bytes")
        allowed = {"application/pdf", "image/png", "image/jpeg", "text/csv"}
        if not self.allowed_types or not set(self.allowed_types) <= allowed:
            raise ValueError(f"mdf.allowed_types: choose from {', '.join(sorted(allowed))}")
        _check_offsets("mdf.claim_reminder_days", self.claim_reminder_days)
        _check_offsets("mdf.expiry_warning_days", self.expiry_warning_days)
        return self

    def activity_type(self, key: str) -> MdfActivityType | None:
        return next((t for t in self.activity_types if t.key == key), None)

    def levels_for(self, amount_minor: int) -> list[ApprovalLevel]:
        """The levels an amount needs: the first always, each next one above its threshold."""
        return [lv for i, lv in enumerate(self.approval_levels) if i == 0 or amount_minor > lv.above_minor]


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
            mode=Mode.cam_meeting, target_minor=50_000_000, registrations_goal=6, certifications_required=4,
            demote_below_score=45, demote_below_attainment=0.5,
        ),
        Tier.gold: QbrTierRules(
            mode=Mode.cam_meeting, target_minor=20_000_000, registrations_goal=4, certifications_required=2,
            promote_min_score=85, promote_min_attainment=1.5, promote_min_registrations=6,
            demote_below_score=40, demote_below_attainment=0.4,
        ),
        Tier.silver: QbrTierRules(
            mode=Mode.digital, every_quarters=2, target_minor=5_000_000, registrations_goal=2,
            certifications_required=1, promote_min_score=80, promote_min_attainment=1.5, promote_min_registrations=4,
            demote_below_score=30,
        ),
        Tier.registered: QbrTierRules(
            mode=Mode.scorecard, target_minor=1_000_000, registrations_goal=1, promote_min_score=80,
            promote_min_attainment=1.5, promote_min_registrations=2,
        ),
    }  # fmt: skip


def _default_qbr_weights() -> dict[Metric, float]:
    return {
        Metric.revenue: 30, Metric.pipeline: 10, Metric.registrations: 10, Metric.win_rate: 10,
        Metric.certifications: 15, Metric.mdf: 10, Metric.onboarding: 5, Metric.responsiveness: 10,
    }  # fmt: skip


class QbrPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field("UTC", max_length=60, description="the program's time zone (quarters start there)")
    cycle_months: list[int] = Field(
        default_factory=lambda: [1, 4, 7, 10], min_length=1, max_length=12,
        description="months whose first day starts a QBR cycle (the Temporal Schedule), in the time zone",
    )  # fmt: skip
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
    overdue_penalty: float = Field(25, ge=0, le=100, allow_inf_nan=False, description="points per overdue item")
    schedule_deadline_days: float = Field(
        21, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="a CAM QBR not scheduled by then alerts the CAM"
    )
    meeting_window_days: float = Field(
        80, gt=0, le=MAX_DAYS, allow_inf_nan=False,
        description="a CAM QBR not held (or its notes not recorded) this long after it opened closes as missed",
    )  # fmt: skip
    pre_read_hours: float = Field(48, gt=0, le=24 * 60, allow_inf_nan=False, description="pre-read before the meeting")
    notes_due_days: float = Field(
        2, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="after the meeting: the CAM is reminded of the notes"
    )
    action_reminder_days: float = Field(
        3, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="an open action item is reminded this long before due"
    )
    action_escalation_days: float = Field(
        7, gt=0, le=MAX_DAYS, allow_inf_nan=False,
        description="overdue this long: escalated one level (partner, then CAM, then ops)",
    )  # fmt: skip
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


class OpsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retrying_minutes: float = Field(
        30, gt=0, le=10080, allow_inf_nan=False,
        description="a step failing transiently for this long (real minutes) is listed by GET /ops/retrying",
    )  # fmt: skip


class LimitsPolicy(BaseModel):
    """What one journey takes from its partner: how far ahead (or back) a date sent to a journey
    may lie, how many times the same change may be made, and how long a history grows before the
    journey continues as new. Validators refuse beyond (409 / 422 through the API)."""

    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(
        3650, ge=30, le=MAX_DAYS,
        description="a date or time sent to a journey lies within this many calendar days of today",
    )  # fmt: skip
    max_stage_changes: int = Field(200, ge=1, le=10000, description="stage changes of one deal")
    max_reschedules: int = Field(20, ge=1, le=1000, description="meeting proposals of one QBR (first included)")
    max_date_changes: int = Field(20, ge=1, le=1000, description="activity date changes of one MDF request")
    max_milestone_reports: int = Field(
        200, ge=1, le=10000, description="milestone reports to one onboarding journey (repeats included)"
    )
    history_events: int = Field(
        10000, ge=100, le=40000,
        description="a deal or QBR journey whose history reaches this many events continues as new",
    )  # fmt: skip


class WebhookPolicy(BaseModel):
    """Outbound webhook delivery: how long and how often a failing subscriber is retried (real
    time, like `ops.retrying_minutes`: an endpoint's outage does not follow program days)."""

    model_config = ConfigDict(extra="forbid")

    retry_hours: float = Field(
        24, gt=0, le=720, allow_inf_nan=False, description="a delivery is retried this many hours, then failed"
    )
    first_retry_seconds: float = Field(5, ge=1, le=3600, allow_inf_nan=False, description="first retry interval")
    max_retry_seconds: float = Field(
        600, ge=1, le=86400, allow_inf_nan=False, description="longest interval between retries (doubling)"
    )
    timeout_seconds: float = Field(10, gt=0, le=60, allow_inf_nan=False, description="one request's time limit")


class ProgramPolicy(BaseModel):
    """One version of the program policy (what ops edit through `PUT /policy`)."""

    model_config = ConfigDict(extra="forbid")

    day_seconds: float = Field(
        86400,
        ge=0.01,
        le=86400,
        allow_inf_nan=False,
        description="length of one policy day in seconds (86400 in production)",
    )
    tiers: dict[Tier, TierRules] = Field(default_factory=_default_tiers)
    onboarding: OnboardingPolicy = Field(default_factory=_default_onboarding)
    deal: DealPolicy = Field(default_factory=DealPolicy)
    cert: CertPolicy = Field(default_factory=CertPolicy)
    ops: OpsPolicy = Field(default_factory=OpsPolicy)
    mdf: MdfPolicy = Field(default_factory=MdfPolicy)
    webhooks: WebhookPolicy = Field(default_factory=WebhookPolicy)
    qbr: QbrPolicy = Field(default_factory=QbrPolicy)
    limits: LimitsPolicy = Field(default_factory=LimitsPolicy)
    health: HealthPolicy = Field(default_factory=HealthPolicy)  # health: until sections come from manifests

    @model_validator(mode="after")
    def _all_tiers(self) -> ProgramPolicy:
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers: rules missing for {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _dry_run(self) -> ProgramPolicy:
        """Every wait a journey would schedule under this policy must be a real, bounded timer:
        a policy that would make journeys fail their workflow task is refused here."""
        for name, n in self.schedule().items():
            try:
                wait = self.days(n)
            except OverflowError as err:
                raise ValueError(f"{name}: {n:g} days of {self.day_seconds:g} s cannot be scheduled") from err
            if wait > MAX_TIMER:
                raise ValueError(f"{name}: {n:g} days of {self.day_seconds:g} s is longer than {MAX_TIMER.days} days")
        return self

    def schedule(self) -> dict[str, float]:
        """The longest wait, in policy days, of each timer every journey sets (the dry run)."""
        ob, deal, cert = self.onboarding, self.deal, self.cert
        longest_protection = max(r.protection_days for r in deal.tiers.values())
        return {
            "onboarding.plan_days": ob.plan_days,
            "onboarding.escalation_days": max(m.due_day for m in ob.milestones) + ob.escalation_days,
            "deal.escalation_days": deal.escalation_days,
            "deal.protection_days": longest_protection + deal.max_extensions * deal.max_extension_days,
            "deal.stall_days": deal.stall_days,
            "deal.decision_link_days": deal.decision_link_days,
            "cert.reminder_days": max(cert.reminder_days, default=0) + cert.grace_days,
            "cert.cam_alert_days": cert.cam_alert_days + cert.grace_days,
            "mdf.approval_levels": max(lv.escalation_days for lv in self.mdf.approval_levels),
            "mdf.pre_approval_days": self.mdf.pre_approval_days + self.mdf.max_activity_days,
            "mdf.claim_window_days": self.mdf.claim_window_days,
            "mdf.audit_days": self.mdf.audit_days,
            "mdf.expiry_grace_days": self.mdf.expiry_grace_days + max(self.mdf.expiry_warning_days, default=0),
            "mdf.decision_link_days": self.mdf.decision_link_days,
            "qbr.schedule_deadline_days": self.qbr.schedule_deadline_days,
            "qbr.meeting_window_days": self.qbr.meeting_window_days,
            "qbr.action_escalation_days": 2 * self.qbr.action_escalation_days + self.qbr.action_reminder_days,
            "qbr.remediation_days": self.qbr.remediation_days,
        }

    def days(self, n: float) -> timedelta:
        """A duration of `n` policy days."""
        return timedelta(seconds=n * self.day_seconds)
>>>>>>> h-health


class VersionedPolicy(BaseModel):
    version: int
    policy: ProgramPolicy
