"""Bodies of the onboarding endpoints: the journey's own contracts are the answers."""

from __future__ import annotations

from journeys.onboarding.domain import MilestoneReport, OnboardingProgress

MILESTONE_KEY = r"^[a-z][a-z0-9_]{1,39}$"

__all__ = ["MILESTONE_KEY", "MilestoneReport", "OnboardingProgress"]
