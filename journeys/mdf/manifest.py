"""The MDF request-to-claim journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import Grant, JourneySpec
from journeys.mdf import domain, effectiveness, links
from journeys.mdf.activities import MdfActivities
from journeys.mdf.events import EVENTS
from journeys.mdf.fund import MdfFundWorkflow
from journeys.mdf.handover import handover_items
from journeys.mdf.health import MOVED_BY, health_signals
from journeys.mdf.models import MdfRequest
from journeys.mdf.policy import MdfPolicy
from journeys.mdf.scorecard import scorecard_inputs
from journeys.mdf.workflow import MdfWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=MdfWorkflow,
    entity=MdfRequest,
    activities=lambda r: MdfActivities(
        r.sessionmaker,
        link_secret=r.settings.link_secret,
        public_base_url=r.settings.public_base_url,
        ops_email=r.settings.ops_email,
    ),
    legacy_activity_names=domain.LEGACY_ACTIVITY_NAMES,
    describe=domain.describe,
    extra_workflows=(MdfFundWorkflow,),
    router="journeys.mdf.router:router",
    web="journeys.mdf.web",
    portal="journeys.mdf.portal",
    bench="bench.mdf",
    policy=MdfPolicy,
    events=EVENTS,
    scorecard_inputs=scorecard_inputs,
    link_kinds={"decision": links.DECISION},
    grants={
        domain.APPROVER_LEVEL: Grant(
            type=int,
            description="ops keys: the highest MDF approval level the key decides (none: the first level only)",
            label="an approver level",
            api_field="approver_level",
        )
    },
    health_signals=health_signals,
    health_events=MOVED_BY,
    handover_items=handover_items,
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
)
