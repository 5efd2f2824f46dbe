"""The MDF request-to-claim journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.mdf import domain
from journeys.mdf.activities import MdfActivities
from journeys.mdf.fund import MdfFundWorkflow
from journeys.mdf.health import health_signals
from journeys.mdf.models import MdfRequest
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
    bench="bench.mdf",
    scorecard_inputs=scorecard_inputs,
    health_signals=health_signals,
)
