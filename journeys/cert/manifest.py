"""The certification renewal journey's manifest: every part the platform plugs in."""

from __future__ import annotations

from core.journey import JourneySpec
from journeys.cert import domain, effectiveness
from journeys.cert.activities import CertActivities
from journeys.cert.events import EVENTS
from journeys.cert.health import MOVED_BY, health_signals
from journeys.cert.models import Certification
from journeys.cert.policy import CertPolicy
from journeys.cert.scorecard import scorecard_inputs
from journeys.cert.workflow import CertWorkflow

SPEC = JourneySpec(
    name=domain.JOURNEY,
    workflow=CertWorkflow,
    entity=Certification,
    activities=lambda r: CertActivities(r.sessionmaker, outbox=r.outbox),
    legacy_activity_names=domain.LEGACY_ACTIVITY_NAMES,
    describe=lambda inp: domain.describe(domain.CertInput.model_validate(inp)),
    router="journeys.cert.router:router",
    web="journeys.cert.web",
    portal="journeys.cert.portal",
    bench="bench.cert",
    policy=CertPolicy,
    events=EVENTS,
    event_prefix="certification.",
    scorecard_inputs=scorecard_inputs,
    health_signals=health_signals,
    health_events=MOVED_BY,
    cam_figures=effectiveness.cam_figures,
    cam_figure_labels=effectiveness.LABELS,
)
