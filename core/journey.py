"""The journey kit: the manifest every journey publishes (`journeys/<name>/manifest.py` defines
`SPEC = JourneySpec(...)`) and what its activities are built with. core/registry.py installs the
journeys; the worker, the API, the workspace, the bench and the tests read their manifests, and
nothing else lists journeys by hand.

A journey named `<name>` is one package, `journeys/<name>/`: `domain.py` (its contracts and
rules), `workflow.py`, `activities.py`, `models.py` (its tables), `router.py` / `schemas.py` /
`service.py` (its API), `web.py` (its workspace providers), `templates/mail/` (its emails),
`contract.py` (what other journeys and the platform may use of it) and `manifest.py`; its tests are
`tests/<name>/`. Its workflow id is `<name>-<entity id>` and its section of the program policy is
`ProgramPolicy.<name>`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.mail import Mailer
from core.settings import Settings
from domain.policy import ProgramPolicy
from journeys.health.contract import Signal
from store.models import Base

JOURNEYS_DIR = Path(__file__).resolve().parents[1] / "journeys"


@dataclass(frozen=True)
class ScorecardQuery:
    """What a journey's scorecard inputs are read for: a partner over a QBR period's window."""

    partner_id: uuid.UUID
    period: str  # the QBR period, e.g. "2026-Q2"
    start: datetime  # [start, end): the period, or a remediation recheck's window of it
    end: datetime
    policy: ProgramPolicy  # the version the scorecard is computed under


# A journey's figures for the QBR scorecard, read in the scorecard's transaction: a dict of
# `ScorecardInputs` fields (journeys/qbr/domain.py), each field given by one journey.
ScorecardInputsReader = Callable[[AsyncSession, ScorecardQuery], Awaitable[dict[str, Any]]]


# A journey's partner-health signals as they stand now (journeys/<name>/health.py): overdue
# milestones, lapsing certifications, slow deal registration... (session, partner id, now, policy).
HealthSignalsReader = Callable[[AsyncSession, uuid.UUID, datetime, ProgramPolicy], Awaitable[list[Signal]]]


@dataclass(frozen=True)
class Resources:
    """What activities are built with, once per worker process."""

    sessionmaker: async_sessionmaker[AsyncSession]
    mailer: Mailer
    settings: Settings
    following: tuple[str, ...] = ()  # the journeys that follow a partner's coverage (tier, CAM)
    scorecard_inputs: tuple[ScorecardInputsReader, ...] = ()  # every journey's `scorecard_inputs`
    health_signals: tuple[HealthSignalsReader, ...] = ()  # every journey's `health_signals`


# Run by every worker at start-up and whenever a newer policy version is stored, and by the API
# right after `PUT /policy` saves one (e.g. QBR's cycle schedule): (client, policy, task queue, version).
PolicyHook = Callable[[Client, ProgramPolicy, str, int], Awaitable[object]]


@dataclass(frozen=True)
class JourneySpec:
    name: str  # id prefix, `Journey` search attribute, journeys/<name>/, tests/<name>/
    workflow: type  # the @workflow.defn class whose id is `<name>-<entity id>`
    activities: Callable[[Resources], object]  # builds the object whose @activity.defn methods it runs
    legacy_activity_names: Mapping[str, str] = field(default_factory=dict)  # before per-journey names
    entity: type[Base] | None = None  # the row whose id names the workflow (None: the partner itself)
    follows_coverage: bool = True  # receives CHANGE_COVERAGE when the partner's tier or CAM changes
    # The static summary and details the Temporal Web UI shows, from the workflow's start input.
    describe: Callable[[dict[str, Any]], tuple[str, str]] = lambda _: ("", "")
    # Further workflows of the journey (e.g. the QBR cycle that starts the partners' QBRs).
    extra_workflows: tuple[type, ...] = ()
    # Its API: "module:attribute" of its FastAPI router (imported by the API only, never the worker).
    router: str = ""
    # Its workspace module (registers its Today items, portfolio columns, partner-page sections).
    web: str = ""
    # Its benchmark module (bench/): runs the journey beside its bare baseline.
    bench: str = ""
    on_policy_saved: PolicyHook | None = None
    # Its figures for the QBR scorecard (journeys/<name>/scorecard.py), which reads them through
    # the registry (Resources.scorecard_inputs) and never imports the journey.
    scorecard_inputs: ScorecardInputsReader | None = None
    # Its signals for partner health (journeys/<name>/health.py), read by the health journey
    # through the registry (Resources.health_signals).
    health_signals: HealthSignalsReader | None = None
    # A journey of the partner itself, started with every partner (`<name>-<partner id>`, e.g.
    # health): the model of its start input (built from the partner, api/journeys.py) under a
    # policy, or None while the policy has it off.
    with_every_partner: Callable[[ProgramPolicy], type[BaseModel] | None] | None = None

    @property
    def package(self) -> str:
        return f"journeys.{self.name}"

    @property
    def directory(self) -> Path:
        return JOURNEYS_DIR / self.name

    @property
    def mail_templates(self) -> Path:
        return self.directory / "templates" / "mail"

    @property
    def docs_page(self) -> str:
        """Its page for operators and contributors (tests/kit/test_docs.py checks it exists)."""
        return f"docs/journeys/{self.name}.md"
