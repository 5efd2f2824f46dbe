"""Contracts of the quarterly business review journey: its names, states, messages and the
workflows' and activities' inputs and results.

Two workflows: the cycle `qbr-cycle-{period}` (started by a Temporal Schedule at the policy's
cadence, or by ops for a backfill) fans out one `qbr-{partner_id}-{period}` per active partner.
Each computes the partner's scorecard (a snapshot with its inputs), then by tier a CAM-led QBR
(meeting, invite, pre-read, notes, action items chased) or an automated scorecard with the
recommended actions, and the tier review (promote / hold / demote, decided by the CAM or ops).
The periods are in periods.py, the scoring in scoring.py."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from functools import partial

from pydantic import BaseModel, Field

from domain import charts
from domain.enums import Tier
from domain.journeys import Coverage, workflow_id

# Still imported from here by modules edited in parallel (activities.py, service.py, api.web.decisions,
# domain.policy): import them from periods, scoring or domain.charts, then drop these lines.
from journeys.qbr.periods import PERIOD as PERIOD
from journeys.qbr.periods import period_bounds as period_bounds
from journeys.qbr.periods import shift as shift
from journeys.qbr.scoring import TIER_ORDER as TIER_ORDER
from journeys.qbr.scoring import Band as Band
from journeys.qbr.scoring import MdfFigures as MdfFigures
from journeys.qbr.scoring import Metric as Metric
from journeys.qbr.scoring import Recommendation
from journeys.qbr.scoring import Scorecard as Scorecard
from journeys.qbr.scoring import ScorecardInputs as ScorecardInputs
from journeys.qbr.scoring import money as money
from journeys.qbr.scoring import percentiles as percentiles
from journeys.qbr.scoring import scorecard as scorecard

trend_svg = partial(charts.trend_svg, form="email")  # the pre-read's chart

JOURNEY = "qbr"
CYCLE = "qbr-cycle"  # the cycle's workflow id prefix: `qbr-cycle-{period}`
QBR_WORKFLOW = "QbrWorkflow"  # the workflow types, as started by an activity or the API
CYCLE_WORKFLOW = "QbrCycleWorkflow"
# Since this patch the cycle starts the partners' QBRs (and the scheduled run starts the cycle)
# through an activity, as workflows of their own rather than children: no child completion ever
# reaches a cycle (one arriving while the cycle completed could leave the time-skipping test
# server stalled, docs/simulator.md), and a QBR outliving its cycle leaves nothing behind.
CYCLE_STARTS_WORKFLOWS_PATCH = "qbr-cycle-starts-workflows"

# Messages of a partner's QBR (besides the shared CHANGE_COVERAGE and PROGRESS).
SCHEDULE = "schedule"  # update: the CAM or the partner proposes the meeting time
RECORD_NOTES = "record_notes"  # update: the CAM records the notes and the action items
COMPLETE_ACTION = "complete_action"  # update: an action item is done
EDIT_ACTION = "edit_action"  # update: an open action item's title, owner or due date changes, or it is dropped
DECIDE_TIER = "decide_tier"  # update: the CAM (ops without one) approves or overrides the tier review
# Messages of the cycle.
PREPARED = "prepared"  # signal: a partner's QBR is prepared (the cycle's window moves on)


class QbrActivity:
    """Activity names of this journey."""

    COMPUTE_SCORECARD = "qbr.compute_scorecard"
    RECORD_STATE = "qbr.record_state"
    RECORD_MEETING = "qbr.record_meeting"
    QUEUE_PRE_READ = "qbr.queue_pre_read"
    RECORD_NOTES = "qbr.record_notes"
    COMPLETE_ACTION = "qbr.complete_action"
    EDIT_ACTION = "qbr.edit_action"
    RECORD_REVIEW = "qbr.record_review"
    CHANGE_TIER = "qbr.change_tier"
    LIST_PARTNERS = "qbr.list_partners"
    START_QBRS = "qbr.start_qbrs"
    START_CYCLE = "qbr.start_cycle"


LEGACY_ACTIVITY_NAMES: dict[str, str] = {}


class Mode(StrEnum):
    cam_meeting = "cam_meeting"  # a QBR with the CAM: meeting, invite, pre-read, notes, action items
    digital = "digital"  # the scorecard and the recommended actions by email
    scorecard = "scorecard"  # the automated scorecard only (with the recommended actions)


class QbrState(StrEnum):
    preparing = "preparing"
    snapshot_only = "snapshot_only"  # no review this period for the tier (cadence): the snapshot is kept
    scorecard_sent = "scorecard_sent"
    scheduling = "scheduling"
    scheduled = "scheduled"
    pre_read_sent = "pre_read_sent"
    following_up = "following_up"  # notes recorded, action items open
    done = "done"
    missed = "missed"  # no meeting (or no notes) within the policy's meeting window


class ReviewState(StrEnum):
    none = "none"  # no tier review this period
    held = "held"  # the rules recommend holding: recorded, nothing to decide
    pending = "pending"  # waiting for the CAM (ops) to decide
    remediation = "remediation"  # a demotion approved: the remediation period runs
    recovered = "recovered"  # the remediation period ended with the rules satisfied
    changed = "changed"  # the tier changed
    kept = "kept"  # overridden: the tier stays


class Owner(StrEnum):
    partner = "partner"
    cam = "cam"


# ---------------------------------------------------------------------------- workflow contracts


def qbr_id(partner_id: str, period: str) -> str:
    return workflow_id(JOURNEY, f"{partner_id}-{period}")


def cycle_id(period: str) -> str:
    return f"{CYCLE}-{period}"


class QbrInput(BaseModel):
    partner_id: str
    partner_name: str
    coverage: Coverage
    period: str
    policy_version: int | None = None
    cycle_id: str | None = None  # the cycle to tell when prepared (None: started alone)
    carried: QbrCarried | None = None  # set by continue-as-new: the action items' chase goes on


class QbrCarried(BaseModel):
    """What a QBR carries into its next run when its history grows during the chase of its action
    items (the meeting, the notes and the tier review are done by then)."""

    state: QbrState
    mode: Mode | None = None
    card: Scorecard | None = None
    meeting: Meeting | None = None
    items: list[ActionItem]
    items_version: int
    review: ReviewOutcome | None = None
    sent: list[str]  # chase steps already notified


class CycleInput(BaseModel):
    """One page of a cycle; continue-as-new carries the cursor and the counters to the next."""

    period: str | None = None  # None: started by the schedule, for the quarter before its time
    policy_version: int | None = None
    after: str | None = None  # the last partner id started (the cursor)
    in_flight: list[str] = Field(default_factory=list)  # QBRs started, not yet prepared
    started: int = 0
    prepared: int = 0
    existing: int = 0  # QBRs that already existed (a second run for the period)
    pages: int = 0
    max_in_flight: int = 0


class CycleProgress(BaseModel):
    period: str | None
    started: int
    prepared: int
    existing: int
    in_flight: int
    max_in_flight: int
    pages: int
    done: bool


class CycleResult(BaseModel):
    period: str
    started: int
    existing: int
    triggered: bool = True  # False: the schedule found the period's cycle already there


class Prepared(BaseModel):
    workflow_id: str


class PartnerPage(BaseModel):
    ids: list[str]
    coverage: list[Coverage]
    names: list[str]


class ListPartnersInput(BaseModel):
    after: str | None
    limit: int


class StartQbrsInput(BaseModel):
    """Partners' QBRs for the cycle to start (at most its window's free places)."""

    qbrs: list[QbrInput]


class StartedQbrs(BaseModel):
    """Per QBR asked: True if started by this activity (this attempt or an earlier one), False if it
    existed already (a second cycle for the period)."""

    started: list[bool]


class MeetingProposal(BaseModel):
    starts_at: datetime
    duration_minutes: int = Field(60, ge=15, le=480)
    by: str


class Meeting(BaseModel):
    uid: str  # stable for the QBR: a reschedule updates the same calendar event
    sequence: int  # 0 for the first invite, +1 at each reschedule
    starts_at: datetime
    ends_at: datetime
    by: str
    proposed_at: datetime


class ActionItemIn(BaseModel):
    title: str
    owner: Owner
    due: date


class ActionItem(ActionItemIn):
    id: int  # position within the QBR, from 1
    done_at: datetime | None = None
    done_by: str | None = None
    cancelled_at: datetime | None = None  # dropped: no longer chased
    revision: int = 0  # +1 at each edit (its reminders start again)

    @property
    def open(self) -> bool:
        return self.done_at is None and self.cancelled_at is None


class Notes(BaseModel):
    notes: str
    action_items: list[ActionItemIn] = Field(default_factory=list, max_length=50)
    by: str


class ActionEdit(BaseModel):
    """Update: change an open action item (the fields given), or drop it (`cancel`)."""

    item_id: int
    title: str | None = None
    owner: Owner | None = None
    due: date | None = None
    cancel: bool = False
    by: str


class NotesResult(BaseModel):
    action_items: list[ActionItem]


class ActionDone(BaseModel):
    item_id: int
    by: str


class TierDecision(BaseModel):
    approve: bool  # True: the recommendation applies; False: override with `to_tier` (or hold)
    to_tier: Tier | None = None
    reason: str = ""
    cam_id: str | None = None  # the CAM of a partner promoted into a tier that has one
    by: str


class ReviewOutcome(BaseModel):
    state: ReviewState
    recommendation: Recommendation
    decided: Recommendation | None = None
    to_tier: Tier | None = None
    remediation_ends: datetime | None = None


class QbrProgress(BaseModel):
    partner_id: str
    period: str
    state: QbrState
    mode: Mode | None
    score: float | None
    band: Band | None
    meeting: Meeting | None
    notes_recorded: bool
    action_items: list[ActionItem]
    review: ReviewOutcome | None


# Activity inputs and results.


class ScorecardRequest(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    tier: Tier
    policy_version: int
    window_start: datetime | None = None  # a recheck (remediation): its own window, target pro-rated
    window_end: datetime | None = None


class QbrStateInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    state: QbrState
    by: str
    at: datetime


class MeetingInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    meeting: Meeting


class PreReadInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    recipients: list[str]


class NotesInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    notes: str
    action_items: list[ActionItem]
    by: str


class ActionDoneInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    item_id: int
    by: str
    at: datetime


class ActionEditInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    item: ActionItem
    by: str


class ReviewInput(BaseModel):
    idempotency_key: str
    partner_id: str
    period: str
    state: ReviewState
    recommendation: Recommendation
    reasons: list[str]
    decided: Recommendation | None = None
    to_tier: Tier | None = None
    decided_by: str | None = None
    reason: str | None = None
    remediation_ends: datetime | None = None


class ChangeTierInput(BaseModel):
    idempotency_key: str
    partner_id: str
    tier: Tier
    cam_id: str | None
    keep_cam: bool  # True: keep the partner's CAM (when the tier allows one)
    by: str
    reason: str


class ChangeTierResult(BaseModel):
    coverage: Coverage
    workflow_ids: list[str]  # the partner's other journeys that follow coverage (to tell)


def describe(inp: QbrInput) -> tuple[str, str]:
    """The journey's static summary and details in the Temporal Web UI (encrypted by the codec)."""
    cam = f"CAM {inp.coverage.cam_id}" if inp.coverage.cam_id else "no CAM"
    return (
        f"QBR {inp.period}: {inp.partner_name} ({inp.coverage.tier.value}, {cam})",
        f"**Partner** {inp.partner_id}  \n**Period** {inp.period}  \n**Cycle** {inp.cycle_id or 'started alone'}  \n"
        f"**Policy version** {inp.policy_version or 'current at start'}",
    )


QbrCarried.model_rebuild()
QbrInput.model_rebuild()
