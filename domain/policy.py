"""The program policy: every window, SLA, threshold and cadence lives here.

Durations are expressed in policy *days*; `day_seconds` says how long one policy day is
(86400 in production). Tests and demos shrink it so a 90-day journey runs in seconds.
Workflows never hard-code a duration: they read the policy once (through an activity)
and carry it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import Tier
from domain.types import Name, at_most

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


class OpsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retrying_minutes: float = Field(
        30, gt=0, le=10080, allow_inf_nan=False,
        description="a step failing transiently for this long (real minutes) is listed by GET /ops/retrying",
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
    webhooks: WebhookPolicy = Field(default_factory=WebhookPolicy)

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
        }

    def days(self, n: float) -> timedelta:
        """A duration of `n` policy days."""
        return timedelta(seconds=n * self.day_seconds)


class VersionedPolicy(BaseModel):
    version: int
    policy: ProgramPolicy
