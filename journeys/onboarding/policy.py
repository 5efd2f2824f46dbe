"""The onboarding journey's section of the program policy (`ProgramPolicy.onboarding`): the
activation plan, its milestones and when an overdue one is escalated. Pure pydantic."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import Tier
from domain.policy_kit import MAX_DAYS, PlatformPolicy, PolicySection
from domain.types import Name, at_most


class MilestoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="stable identifier")
    title: Annotated[Name, Field(max_length=120), at_most(120)]  # partner_milestones.title holds 120
    due_day: float = Field(
        gt=0, le=MAX_DAYS, allow_inf_nan=False, description="due offset from enrolment, in policy days"
    )
    required_for: list[Tier] = Field(description="tiers for which the milestone is required")


class OnboardingPolicy(PolicySection):
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

    @classmethod
    def default(cls) -> OnboardingPolicy:
        return _default_onboarding()

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        return {
            "plan_days": self.plan_days,
            "escalation_days": max(m.due_day for m in self.milestones) + self.escalation_days,
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


SECTION = OnboardingPolicy
