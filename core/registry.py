"""The journey registry: one entry per journey. The worker, the CLI, the API's coverage fan-out
and the tests read it; nothing else lists journeys by hand.

A journey named `<name>` has, by convention, `domain/<name>.py`, `workflows/<name>.py`,
`activities/<name>.py` with templates in `activities/templates/<name>/`, `store/models/<name>.py`,
`api/<name>/` (router, schemas, service) and `tests/<name>/`; its workflow id is `<name>-<entity id>`
and its section of the program policy is `ProgramPolicy.<name>`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.cert import CertActivities
from activities.common import CommonActivities
from activities.deal import DealActivities
from activities.mail import Mailer
from activities.mdf import MdfActivities
from activities.onboarding import OnboardingActivities
from activities.qbr import QbrActivities
from core.settings import Settings
from domain import cert, deal, journeys, mdf, onboarding, qbr
from store.models import Base
from store.models.cert import Certification
from store.models.deal import Deal
from store.models.mdf import MdfRequest
from workflows.cert import CertWorkflow
from workflows.deal import DealWorkflow
from workflows.mdf import MdfFundWorkflow, MdfWorkflow
from workflows.onboarding import OnboardingWorkflow
from workflows.qbr import QbrCycleWorkflow, QbrWorkflow


@dataclass(frozen=True)
class Resources:
    """What activities are built with, once per worker process."""

    sessionmaker: async_sessionmaker[AsyncSession]
    mailer: Mailer
    settings: Settings


@dataclass(frozen=True)
class JourneySpec:
    name: str  # id prefix, `Journey` search attribute, templates/<name>/, api/<name>/, tests/<name>/
    workflow: type  # the @workflow.defn class
    activities: Callable[[Resources], object]  # builds the object whose @activity.defn methods it runs
    legacy_activity_names: Mapping[str, str] = field(default_factory=dict)  # before per-journey names
    entity: type[Base] | None = None  # the row whose id names the workflow (None: the partner itself)
    follows_coverage: bool = True  # receives CHANGE_COVERAGE when the partner's tier or CAM changes
    # The static summary and details the Temporal Web UI shows, from the workflow's start input.
    describe: Callable[[dict[str, Any]], tuple[str, str]] = lambda _: ("", "")
    # Further workflows of the journey (e.g. the QBR cycle that starts the partners' QBRs).
    extra_workflows: tuple[type, ...] = ()

    @property
    def docs_page(self) -> str:
        """Its page for operators and contributors (tests/kit/test_docs.py checks it exists)."""
        return f"docs/journeys/{self.name}.md"


JOURNEYS: tuple[JourneySpec, ...] = (
    JourneySpec(
        name=onboarding.JOURNEY,
        workflow=OnboardingWorkflow,
        activities=lambda r: OnboardingActivities(r.sessionmaker),
        legacy_activity_names=onboarding.LEGACY_ACTIVITY_NAMES,
        describe=lambda inp: onboarding.describe(onboarding.OnboardingInput.model_validate(inp)),
    ),
    JourneySpec(
        name=deal.JOURNEY,
        workflow=DealWorkflow,
        entity=Deal,
        activities=lambda r: DealActivities(
            r.sessionmaker,
            link_secret=r.settings.link_secret,
            public_base_url=r.settings.public_base_url,
            ops_email=r.settings.ops_email,
        ),
        legacy_activity_names=deal.LEGACY_ACTIVITY_NAMES,
        describe=lambda inp: deal.describe(deal.DealInput.model_validate(inp)),
    ),
    JourneySpec(
        name=cert.JOURNEY,
        workflow=CertWorkflow,
        entity=Certification,
        activities=lambda r: CertActivities(r.sessionmaker),
        legacy_activity_names=cert.LEGACY_ACTIVITY_NAMES,
        describe=lambda inp: cert.describe(cert.CertInput.model_validate(inp)),
    ),
    JourneySpec(
        name=mdf.JOURNEY,
        workflow=MdfWorkflow,
        entity=MdfRequest,
        activities=lambda r: MdfActivities(
            r.sessionmaker,
            link_secret=r.settings.link_secret,
            public_base_url=r.settings.public_base_url,
            ops_email=r.settings.ops_email,
        ),
        legacy_activity_names=mdf.LEGACY_ACTIVITY_NAMES,
        describe=mdf.describe,
        extra_workflows=(MdfFundWorkflow,),
    ),
    JourneySpec(
        name=qbr.JOURNEY,
        workflow=QbrWorkflow,
        extra_workflows=(QbrCycleWorkflow,),
        activities=lambda r: QbrActivities(
            r.sessionmaker,
            ops_email=r.settings.ops_email,
            following=tuple(spec.name for spec in JOURNEYS if spec.follows_coverage),
        ),
        describe=lambda inp: qbr.describe(qbr.QbrInput.model_validate(inp)),
    ),
)

BY_NAME = {spec.name: spec for spec in JOURNEYS}


def journey(name: str) -> JourneySpec:
    return BY_NAME[name]


def workflows() -> list[type]:
    return [w for spec in JOURNEYS for w in (spec.workflow, *spec.extra_workflows)]


def make_mailer(settings: Settings) -> Mailer:
    return Mailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


def _activity_methods(obj: object) -> list[Callable[..., Any]]:
    return [
        m for _, m in inspect.getmembers(obj, inspect.ismethod) if activity._Definition.from_callable(m) is not None
    ]


def _alias(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    """The same activity under an older name (for tasks scheduled before the rename)."""
    hints = get_type_hints(method)
    (param,) = [p for p in inspect.signature(method).parameters]

    async def run(arg: Any) -> Any:  # the real annotations are set below
        return await method(arg)

    run.__annotations__ = {param: hints[param], "return": hints["return"]}
    run.__name__ = run.__qualname__ = name
    return activity.defn(name=name)(run)


def activities(resources: Resources) -> list[Callable[..., Any]]:
    """Every activity of every journey (and the shared ones), under its name and its legacy name."""
    legacy = dict(journeys.LEGACY_ACTIVITY_NAMES)
    objects: list[object] = [CommonActivities(resources.sessionmaker, resources.mailer, resources.settings.ops_email)]
    for spec in JOURNEYS:
        legacy.update(spec.legacy_activity_names)
        objects.append(spec.activities(resources))
    out: list[Callable[..., Any]] = []
    for obj in objects:
        for method in _activity_methods(obj):
            out.append(method)
            defn = activity._Definition.from_callable(method)
            assert defn is not None and defn.name is not None
            if defn.name in legacy:
                out.append(_alias(method, legacy[defn.name]))
    return out
