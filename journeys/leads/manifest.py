"""The lead distribution journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.leads import domain, effectiveness, links
from journeys.leads.activities import LeadActivities
from journeys.leads.events import EVENTS
from journeys.leads.models import Lead
from journeys.leads.policy import LeadsPolicy
from journeys.leads.workflow import LeadWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=LeadWorkflow,
    entity=Lead,
    activities=lambda r: LeadActivities(
        r.sessionmaker,
        link_secret=r.settings.link_secret,
        public_base_url=r.settings.public_base_url,
        ops_email=r.settings.ops_email,
    ),
    follows_coverage=False,  # a lead follows its routing, not one partner's coverage
    describe=lambda inp: domain.describe(domain.LeadInput.model_validate(inp)),
    router="journeys.leads.router:router",
    web="journeys.leads.web",
    bench="bench.leads",
    policy=LeadsPolicy,
    events=EVENTS,
    event_prefix="lead.",
    link_kinds={"offer": links.OFFER},
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
)
