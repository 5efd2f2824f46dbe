"""The deal registration journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.deal import domain, effectiveness, links
from journeys.deal.activities import DealActivities
from journeys.deal.events import EVENTS
from journeys.deal.handover import handover_items
from journeys.deal.health import MOVED_BY, health_signals
from journeys.deal.models import Deal
from journeys.deal.policy import DealPolicy
from journeys.deal.scorecard import scorecard_inputs
from journeys.deal.workflow import DealWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=DealWorkflow,
    entity=Deal,
    activities=lambda r: DealActivities(
        r.sessionmaker,
        link_secret=r.settings.link_secret,
        public_base_url=r.settings.public_base_url,
        ops_email=r.settings.ops_email,
        outbox=r.outbox,
    ),
    legacy_activity_names=domain.LEGACY_ACTIVITY_NAMES,
    describe=lambda inp: domain.describe(domain.DealInput.model_validate(inp)),
    router="journeys.deal.router:router",
    web="journeys.deal.web",
    portal="journeys.deal.portal",
    bench="bench.deal",
    policy=DealPolicy,
    events=EVENTS,
    scorecard_inputs=scorecard_inputs,
    link_kinds={"decision": links.DECISION},
    health_signals=health_signals,
    health_events=MOVED_BY,
    handover_items=handover_items,
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
)
