"""The onboarding journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.onboarding import domain
from journeys.onboarding.activities import OnboardingActivities
from journeys.onboarding.events import EVENTS
from journeys.onboarding.health import MOVED_BY, health_signals
from journeys.onboarding.policy import OnboardingPolicy
from journeys.onboarding.scorecard import scorecard_inputs
from journeys.onboarding.workflow import OnboardingWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=OnboardingWorkflow,
    activities=lambda r: OnboardingActivities(r.sessionmaker, outbox=r.outbox),
    legacy_activity_names=domain.LEGACY_ACTIVITY_NAMES,
    describe=lambda inp: domain.describe(domain.OnboardingInput.model_validate(inp)),
    router="journeys.onboarding.router:router",
    web="journeys.onboarding.web",
    portal="journeys.onboarding.portal",
    bench="bench.onboarding",
    policy=OnboardingPolicy,
    events=EVENTS,
    event_prefix="partner.",
    scorecard_inputs=scorecard_inputs,
    health_signals=health_signals,
    health_events=MOVED_BY,
)
