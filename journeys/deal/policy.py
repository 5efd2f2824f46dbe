"""The deal registration journey's section of the program policy (`ProgramPolicy.deal`): the
rules by tier, the approval SLA, the protection window and its extensions. Pure pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import Tier
from domain.policy_kit import MAX_DAYS, PlatformPolicy, PolicySection, check_offsets


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


class DealPolicy(PolicySection):
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
        check_offsets("deal.expiry_reminder_days", self.expiry_reminder_days)
        return self

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        longest_protection = max(r.protection_days for r in self.tiers.values())
        return {
            "escalation_days": self.escalation_days,
            "protection_days": longest_protection + self.max_extensions * self.max_extension_days,
            "stall_days": self.stall_days,
            "decision_link_days": self.decision_link_days,
        }


SECTION = DealPolicy
