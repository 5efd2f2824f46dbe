"""The journey kit: the manifest every journey publishes (`journeys/<name>/manifest.py` defines
`SPEC = JourneySpec(...)`) and what its activities are built with. core/registry.py installs the
journeys; the worker, the API, the workspace, the bench and the tests read their manifests, and
nothing else lists journeys by hand.

A journey named `<name>` is one package, `journeys/<name>/`: `domain.py` (its contracts and
rules), `workflow.py`, `activities.py`, `models.py` (its tables), `router.py` / `schemas.py` /
`service.py` (its API), `web.py` (its workspace providers), `templates/mail/` (its emails),
`contract.py` (what other journeys and the platform may use of it) and `manifest.py`; its tests are
`tests/<name>/`. Its workflow id is `<name>-<entity id>`; its section of the program policy,
`ProgramPolicy.<name>`, is its `policy.py` (`SECTION`) and its webhook events are its `events.py`
(`EVENTS`): both pure pydantic, assembled by domain/policy.py and domain/events.py."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.mail import Mailer
from core.settings import Settings
from domain.enums import Role
from domain.handover import HandoverItem, HandoverQuery
from domain.links import Claims, make_token
from domain.policy import ProgramPolicy
from domain.webhooks import EventSpec
from store.models import Base

if TYPE_CHECKING:
    from activities.common import CommonActivities

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


@dataclass(frozen=True)
class CamFiguresQuery:
    """What a journey's CAM-effectiveness figures are read for: a portfolio (`partners`, a select
    of partner ids, e.g. one CAM's) over [start, end), under a policy; `cam_id` None: every CAM's."""

    partners: Any  # a Select of Partner.id, for `.in_(...)`
    cam_id: uuid.UUID | None
    start: datetime
    end: datetime
    policy: ProgramPolicy


# A journey's figures of a CAM's effectiveness (journeys/<name>/effectiveness.py): a dict of
# figure name to value (a number, or None when there is nothing to measure), read by the platform
# (api/effectiveness.py) through the registry; `CAM_FIGURE_LABELS` of the manifest names them.
CamFiguresReader = Callable[[AsyncSession, CamFiguresQuery], Awaitable[dict[str, float | int | None]]]


# A journey's partner-health signals as they stand now (journeys/<name>/health.py): overdue
# milestones, lapsing certifications, slow deal registration... (session, partner id, now, policy):
# each a `journeys.health.contract.Signal` (the platform names no journey's types).
HealthSignalsReader = Callable[[AsyncSession, uuid.UUID, datetime, ProgramPolicy], Awaitable[list[Any]]]


# A journey's open items for a handover (pending approvals, escalations), read in the handover
# pack's transaction; each decision item carries the receiving CAM's new links.
HandoverItemsReader = Callable[[AsyncSession, HandoverQuery], Awaitable[list[HandoverItem]]]


@dataclass(frozen=True)
class CrmContext:
    """What a journey's CRM event handler is given (`POST /events/crm`, api/routers/crm.py): the
    request's session, the Temporal client, the caller (an `api.auth.Principal`: the CRM's ops key)
    and the task queue its journeys start on."""

    session: AsyncSession
    client: Client
    principal: Any
    task_queue: str


@dataclass(frozen=True)
class CrmOutcome:
    """What a CRM event did: the entity it created or found (`duplicate`: it existed already,
    nothing was done again) and that entity's state."""

    id: uuid.UUID
    state: str
    duplicate: bool = False


@dataclass(frozen=True)
class CrmEventHandler:
    """A CRM event type a journey takes (`JourneySpec.crm_events`, by type, e.g. `lead.created`),
    named as "module:attribute" (imported by the API only, never the worker, like `router`): the
    event's `data` must be a valid `model` (else 422, nothing written); `handle(context, event id,
    data) -> CrmOutcome` acts on it in the request (its refusals, `domain.errors`, are the answer;
    it commits what it writes) and is idempotent on the CRM's own id of the object (a CRM may send
    the same object again under a new event id)."""

    model: str  # e.g. "journeys.leads.schemas:CrmLead"
    handle: str  # e.g. "journeys.leads.service:crm_lead_created"
    description: str


@dataclass(frozen=True)
class CrmEventType:
    """A journey's CRM event type, imported (core/registry.py `crm_events`)."""

    journey: str
    model: type[BaseModel]
    handle: Callable[[CrmContext, str, Any], Awaitable[CrmOutcome]]


@dataclass(frozen=True)
class PendingStart:
    """A start of a journey that records its own starts (`JourneySpec.own_starts`) which Temporal
    never confirmed: what the reconciler starts it with."""

    journey: str
    workflow_id: str
    workflow_type: str  # the @workflow.defn name
    task_queue: str
    start_input: dict[str, Any]
    partner_id: str  # the PartnerId search attribute (a journey without a partner names its own)
    tier: str  # the Tier search attribute
    state: str  # the JourneyState search attribute
    cam_id: str | None = None


@dataclass(frozen=True)
class OwnStarts:
    """A journey whose entity has no partner cannot have a `journeys` row (it needs one), so it
    records its starts itself (e.g. leads: the start input and `started_at` on the lead) and gives
    the reconciler (api/journeys.reconcile) its unconfirmed ones: `pending(session, written before,
    limit)`, oldest first, and `confirm(session, workflow id)` once Temporal took the start."""

    pending: Callable[[AsyncSession, datetime, int], Awaitable[list[PendingStart]]]
    confirm: Callable[[AsyncSession, str], Awaitable[None]]


@dataclass(frozen=True)
class Resources:
    """What activities are built with, once per worker process."""

    sessionmaker: async_sessionmaker[AsyncSession]
    mailer: Mailer
    settings: Settings
    following: tuple[str, ...] = ()  # the journeys that follow a partner's coverage (tier, CAM)
    scorecard_inputs: tuple[ScorecardInputsReader, ...] = ()  # every journey's `scorecard_inputs`
    health_signals: tuple[HealthSignalsReader, ...] = ()  # every journey's `health_signals`
    health_events: frozenset[str] = frozenset()  # every journey's `health_events`
    handover_items: tuple[HandoverItemsReader, ...] = ()  # every journey's `handover_items`
    outbox: CommonActivities | None = None  # the shared activities: a journey's step that queues and sends


# Run by every worker at start-up and whenever a newer policy version is stored, and by the API
# right after `PUT /policy` saves one (e.g. QBR's cycle schedule): (client, policy, task queue, version).
PolicyHook = Callable[[Client, ProgramPolicy, str, int], Awaitable[object]]


C = TypeVar("C", bound=Claims)


@dataclass(frozen=True)
class LinkKind(Generic[C]):
    """A kind of one-click link a journey sends (`JourneySpec.link_kinds`): signed with its own
    salt (distinct from every other kind's: a token of one kind never reads as another), carrying
    its own claims (a `domain.links.Claims` dataclass), deciding on a row of `entity` (whose
    partner's CAM must still be the link's CAM), and opened at `<path>/<token>`. api/links.py
    reads, checks and records the links of every kind."""

    salt: str
    claims: type[C]
    entity: type[Base]
    path: str  # e.g. "/deals/links"

    def url(self, base_url: str, secret: str, claims: C) -> str:
        """The address of a link of this kind (what its emails carry)."""
        return f"{base_url}{self.path}/{make_token(secret, claims, salt=self.salt)}"


@dataclass(frozen=True)
class Grant:
    """A permission a journey gives API keys (`JourneySpec.grants`), e.g. MDF's approval level: a
    key of one of `roles` carries it in its `grants` (by its full name `<journey>.<name>`), set by
    the `POST /api-keys` field `api_field`; `Principal.grant("<journey>.<name>")` reads it."""

    type: type  # of its value
    description: str
    label: str  # what a refusal calls it: "<api_field>: only an ops key carries <label>"
    api_field: str  # the POST /api-keys field that sets it
    roles: tuple[Role, ...] = (Role.ops,)


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
    # Its benchmark (bench/): "bench.<module>" (its `run(stack, journeys)`) or "bench.<module>:<function>"
    # (given the program size), run by `make bench` beside its bare baseline.
    # Its partner portal module (registers its home items, sections, task pages and actions:
    # api/portal/items.py), e.g. "journeys.deal.portal".
    portal: str = ""
    bench: str = ""
    bench_policy: str | None = "hours"  # the bench stack's policy: one-hour policy days, or None: the default
    on_policy_saved: PolicyHook | None = None
    # Its section of the program policy (`ProgramPolicy.<name>`, `journeys/<name>/policy.py`).
    policy: type[BaseModel] | None = None
    # Its webhook event types (`journeys/<name>/events.py`), each named `<event_prefix><what happened>`.
    events: Mapping[str, EventSpec] = field(default_factory=dict)
    event_prefix: str = ""  # "": `<name>.`

    @property
    def events_prefix(self) -> str:
        return self.event_prefix or f"{self.name}."

    # Its figures for the QBR scorecard (journeys/<name>/scorecard.py), which reads them through
    # the registry (Resources.scorecard_inputs) and never imports the journey.
    scorecard_inputs: ScorecardInputsReader | None = None
    # Its kinds of one-click link, by name (the platform calls one `<journey>.<name>`).
    link_kinds: Mapping[str, LinkKind[Any]] = field(default_factory=dict)
    # The permissions it gives API keys, by name (a key carries one as `<journey>.<name>`).
    grants: Mapping[str, Grant] = field(default_factory=dict)
    # Its signals for partner health (journeys/<name>/health.py), read by the health journey
    # through the registry (Resources.health_signals).
    health_signals: HealthSignalsReader | None = None
    # Its event types (of `events`) that move those signals (journeys/<name>/health.py `MOVED_BY`):
    # publishing one for a partner refreshes the partner's health at once (activities/webhooks.py
    # sends the `refresh_signal` of the journeys that take one), not at the next periodic evaluation.
    health_events: frozenset[str] = frozenset()
    # The signal its `<name>-<partner id>` workflow (a `with_every_partner` journey, e.g. health's
    # `refresh`) takes when a partner event of any journey's `health_events` is published, while
    # `with_every_partner` has the journey on in the policy.
    refresh_signal: str = ""
    # While this holds under the policy (None: always), it takes that signal; e.g. health's sweep,
    # when on, reads the published events itself instead.
    refresh_while: Callable[[ProgramPolicy], bool] | None = None
    # Its own record of starts, for a journey without a `journeys` row (its entity has no partner):
    # what the reconciler starts when Temporal never confirmed a start.
    own_starts: OwnStarts | None = None
    # The CRM event types it takes (`POST /events/crm` dispatches them by `type`), e.g. leads'
    # `lead.created`; the platform's own types are the deal's `opportunity.*`.
    crm_events: Mapping[str, CrmEventHandler] = field(default_factory=dict)
    # Its figures of a CAM's effectiveness (journeys/<name>/effectiveness.py) and their labels, in
    # order: read by the platform through the registry (api/effectiveness.py).
    cam_figures: CamFiguresReader | None = None
    cam_figure_labels: Mapping[str, str] = field(default_factory=dict)
    # A journey of the partner itself, started with every partner (`<name>-<partner id>`, e.g.
    # health): the model of its start input (built from the partner, api/journeys.py) under a
    # policy, or None while the policy has it off.
    with_every_partner: Callable[[ProgramPolicy], type[BaseModel] | None] | None = None
    # Its open items of partners handed over to another CAM (journeys/<name>/handover.py), read by
    # the CAM handover (activities/handover.py) for the receiving CAM's handover pack.
    handover_items: HandoverItemsReader | None = None
    # What the simulator's worker adds for it, never the live worker (journeys/<name>/simulation.py):
    # activity interceptors built from the run's sessionmaker, e.g. leads' routing again of the
    # offers expiring at one instant in lead id order (the same sample, the same report).
    simulation_interceptors: Callable[[Any], Sequence[Any]] | None = None

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
