"""Policies used by the end-to-end tests: the real shape, with days that last a second."""

from __future__ import annotations

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.onboarding.policy import MilestoneSpec, OnboardingPolicy

ALL = list(Tier)


def fast_policy(day_seconds: float = 1.0, plan_days: float = 20, escalation_days: float = 2) -> ProgramPolicy:
    return ProgramPolicy(
        day_seconds=day_seconds,
        onboarding=OnboardingPolicy(
            plan_days=plan_days,
            escalation_days=escalation_days,
            milestones=[
                MilestoneSpec(key="portal_access", title="Log in to the partner portal", due_day=1, required_for=ALL),
                MilestoneSpec(
                    key="first_training", title="Complete the first sales training", due_day=2, required_for=ALL
                ),
                MilestoneSpec(
                    key="first_certification",
                    title="Earn a first certification",
                    due_day=3,
                    required_for=[Tier.platinum, Tier.gold, Tier.silver],
                ),
                MilestoneSpec(
                    key="business_plan",
                    title="Agree a joint business plan",
                    due_day=3,
                    required_for=[Tier.platinum, Tier.gold],
                ),
                MilestoneSpec(key="first_deal", title="Register a first deal", due_day=4, required_for=ALL),
            ],
        ),
    )
