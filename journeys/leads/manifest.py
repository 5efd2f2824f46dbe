"""The lead distribution journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import CrmEventHandler, JourneySpec, OwnStarts
from journeys.leads import domain, effectiveness, links, starts
from journeys.leads.activities import LeadActivities
from journeys.leads.events import EVENTS
from journeys.leads.models import Lead
from journeys.leads.policy import LeadsPolicy
from journeys.leads.scorecard import scorecard_inputs
from journeys.leads.simulation import RoutingOrderInterceptor
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
        outbox=r.outbox,
    ),
    follows_coverage=False,  # a lead follows its routing, not one partner's coverage
    describe=lambda inp: domain.describe(domain.LeadInput.model_validate(inp)),
    router="journeys.leads.router:router",
    web="journeys.leads.web",
    portal="journeys.leads.portal",
    bench="bench.leads",
    policy=LeadsPolicy,
    events=EVENTS,
    event_prefix="lead.",
    link_kinds={"offer": links.OFFER},
    scorecard_inputs=scorecard_inputs,
    own_starts=OwnStarts(pending=starts.pending, confirm=starts.confirm),
    crm_events={
        "lead.created": CrmEventHandler(
            model="journeys.leads.schemas:CrmLead",
            handle="journeys.leads.service:crm_lead_created",
            description="a lead from the CRM: created as POST /leads creates it, once per external_id",
        )
    },
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
    simulation_interceptors=lambda sessionmaker: [RoutingOrderInterceptor(sessionmaker)],
)
