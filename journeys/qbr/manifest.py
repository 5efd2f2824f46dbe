"""The quarterly business review journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.qbr import domain, effectiveness
from journeys.qbr.activities import QbrActivities
from journeys.qbr.cycle import QbrCycleWorkflow
from journeys.qbr.health import health_signals
from journeys.qbr.policy import QbrPolicy
from journeys.qbr.schedules import ensure_qbr_schedule
from journeys.qbr.workflow import QbrWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=QbrWorkflow,
    extra_workflows=(QbrCycleWorkflow,),
    activities=lambda r: QbrActivities(
        r.sessionmaker,
        ops_email=r.settings.ops_email,
        following=r.following,
        scorecard_inputs=r.scorecard_inputs,
    ),
    describe=lambda inp: domain.describe(domain.QbrInput.model_validate(inp)),
    router="journeys.qbr.router:router",
    web="journeys.qbr.web",
    bench="bench.qbr_cycle:suite",
    bench_policy=None,
    portal="journeys.qbr.portal",
    on_policy_saved=ensure_qbr_schedule,
    policy=QbrPolicy,
    health_signals=health_signals,
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
)
