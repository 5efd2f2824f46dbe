"""Partner health's manifest: every part the platform plugs in. It reads every other journey's
`health_signals` through the registry (Resources.health_signals)."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.health import domain, effectiveness
from journeys.health.activities import HealthActivities
from journeys.health.events import EVENTS
from journeys.health.handover import handover_items
from journeys.health.policy import HealthPolicy
from journeys.health.scorecard import scorecard_inputs
from journeys.health.starting import ensure_health_sweep, sweeping
from journeys.health.sweep import HealthSweepWorkflow
from journeys.health.workflow import HealthWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=HealthWorkflow,
    activities=lambda r: HealthActivities(r.sessionmaker, r.health_signals, r.health_events),
    extra_workflows=(HealthSweepWorkflow,),
    on_policy_saved=ensure_health_sweep,
    describe=lambda inp: domain.describe(domain.HealthInput.model_validate(inp)),
    router="journeys.health.router:router",
    web="journeys.health.web",
    bench="bench.health",
    policy=HealthPolicy,
    events=EVENTS,
    event_prefix="partner.health",  # partner.health_changed (its partner.at_risk is onboarding's event)
    scorecard_inputs=scorecard_inputs,
    with_every_partner=lambda policy: domain.HealthInput if policy.section(HealthPolicy).watch else None,
    handover_items=handover_items,
    refresh_signal=domain.REFRESH,  # sent by the platform when a journey publishes one of its `health_events`
    refresh_while=lambda policy: not sweeping(policy),  # the sweep reads those events itself
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
)
