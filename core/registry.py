"""The journey registry: installs the journeys of the one list, INSTALLED (domain/installed.py).
Adding a journey is its package `journeys/<name>/` (see core/journey.py for what it holds), one
line in INSTALLED and its migration. The worker, the CLI, the API, the workspace, the bench and the tests read the
manifests from here; nothing else lists journeys by hand."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any, get_type_hints

from temporalio import activity

from activities.common import CommonActivities
from activities.mail import Mailer
from activities.webhooks import Refresh, Refreshed
from core.journey import CrmEventType, Grant, JourneySpec, Resources
from core.settings import Settings
from domain import journeys
from domain.installed import INSTALLED

JOURNEYS: tuple[JourneySpec, ...] = tuple(
    importlib.import_module(f"journeys.{name}.manifest").SPEC for name in INSTALLED
)
FOLLOWING = tuple(spec.name for spec in JOURNEYS if spec.follows_coverage)
SCORECARD_INPUTS = tuple(spec.scorecard_inputs for spec in JOURNEYS if spec.scorecard_inputs is not None)

CAM_FIGURES = tuple(spec.cam_figures for spec in JOURNEYS if spec.cam_figures is not None)
CAM_FIGURE_LABELS = {key: label for spec in JOURNEYS for key, label in spec.cam_figure_labels.items()}
HEALTH_SIGNALS = tuple(spec.health_signals for spec in JOURNEYS if spec.health_signals is not None)
HANDOVER_ITEMS = tuple(spec.handover_items for spec in JOURNEYS if spec.handover_items is not None)
# The event types that move a partner's health (every journey's `health_events`) and the journeys
# of the partner itself refreshed when one is published (their `refresh_signal`: health).
HEALTH_EVENTS = frozenset(t for spec in JOURNEYS for t in spec.health_events)
REFRESHED = tuple(spec for spec in JOURNEYS if spec.refresh_signal)

BY_NAME = {spec.name: spec for spec in JOURNEYS}

__all__ = [
    "BY_NAME",
    "FOLLOWING",
    "HANDOVER_ITEMS",
    "HEALTH_EVENTS",
    "HEALTH_SIGNALS",
    "INSTALLED",
    "SCORECARD_INPUTS",
    "JOURNEYS",
    "REFRESHED",
    "JourneySpec",
    "Resources",
    "activities",
    "journey",
]


def journey(name: str) -> JourneySpec:
    return BY_NAME[name]


def simulation_interceptors(sessionmaker: Any) -> list[Any]:
    """Every journey's `simulation_interceptors` for the simulator's worker (worker/simulate.py)."""
    return [i for spec in JOURNEYS if spec.simulation_interceptors for i in spec.simulation_interceptors(sessionmaker)]


def _named(ref: str) -> Any:
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def crm_events() -> dict[str, CrmEventType]:
    """Every journey's CRM event types, imported (the API's, never the worker's: they are API code)."""
    return {
        t: CrmEventType(journey=spec.name, model=_named(h.model), handle=_named(h.handle))
        for spec in JOURNEYS
        for t, h in spec.crm_events.items()
    }


def refreshes() -> Refresh:
    """What a published event refreshes (activities/webhooks.py): a partner event of HEALTH_EVENTS
    signals each REFRESHED journey of the partner while the policy has it on (`with_every_partner`)
    and its `refresh_while` holds."""

    def on(spec: JourneySpec) -> Callable[[Any], bool]:
        def takes(policy: Any) -> bool:
            if spec.with_every_partner is None or spec.with_every_partner(policy) is None:
                return False
            return spec.refresh_while is None or spec.refresh_while(policy)

        return takes

    return Refresh(types=HEALTH_EVENTS, journeys=tuple(Refreshed(s.name, s.refresh_signal, on(s)) for s in REFRESHED))


def workflows() -> list[type]:
    return [w for spec in JOURNEYS for w in (spec.workflow, *spec.extra_workflows)]


def grants() -> dict[str, Grant]:
    """Every journey's grants to API keys, by full name (`<journey>.<name>`)."""
    return {f"{spec.name}.{name}": grant for spec in JOURNEYS for name, grant in spec.grants.items()}


def make_mailer(settings: Settings, *, pooled: bool = False) -> Mailer:
    """`pooled`: keep SMTP connections open between emails (`SMTP_POOL_SIZE`): a long-lived
    mailer's, the worker's; a mailer made for one email opens a connection for it."""
    return Mailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        pool_size=settings.smtp_pool_size if pooled else 0,
        pool_idle_seconds=settings.smtp_pool_idle_seconds,
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
    common = CommonActivities(resources.sessionmaker, resources.mailer, resources.settings.ops_email, refreshes())
    objects: list[object] = [common]
    if resources.outbox is None:
        resources = replace(resources, outbox=common)
    if not resources.following:
        resources = replace(resources, following=FOLLOWING)
    if not resources.scorecard_inputs:
        resources = replace(resources, scorecard_inputs=SCORECARD_INPUTS)
    if not resources.health_signals:
        resources = replace(resources, health_signals=HEALTH_SIGNALS)
    if not resources.health_events:
        resources = replace(resources, health_events=HEALTH_EVENTS)
    if not resources.handover_items:
        resources = replace(resources, handover_items=HANDOVER_ITEMS)
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
