"""Contracts and pure rules of the quarterly business review journey.

Two workflows: the cycle `qbr-cycle-{period}` (started by a Temporal Schedule at the policy's
cadence, or by ops for a backfill) fans out one `qbr-{partner_id}-{period}` per active partner.
Each computes the partner's scorecard (a snapshot with its inputs), then by tier a CAM-led QBR
(meeting, invite, pre-read, notes, action items chased) or an automated scorecard with the
recommended actions, and the tier review (promote / hold / demote, decided by the CAM or ops).

The scoring here is pure arithmetic on the inputs the activity read from the database, so any
figure can be explained and recomputed from its snapshot."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.enums import Tier
from domain.journeys import Coverage, day_after, workflow_id

if TYPE_CHECKING:
    from journeys.qbr.policy import QbrPolicy

JOURNEY = "qbr"
CYCLE = "qbr-cycle"  # the cycle's workflow id prefix: `qbr-cycle-{period}`

# Messages of a partner's QBR (besides the shared CHANGE_COVERAGE and PROGRESS).
SCHEDULE = "schedule"  # update: the CAM or the partner proposes the meeting time
RECORD_NOTES = "record_notes"  # update: the CAM records the notes and the action items
COMPLETE_ACTION = "complete_action"  # update: an action item is done
EDIT_ACTION = "edit_action"  # update: an open action item's title, owner or due date changes, or it is dropped
DECIDE_TIER = "decide_tier"  # update: the CAM (ops without one) approves or overrides the tier review
# Messages of the cycle.
PREPARED = "prepared"  # signal: a partner's QBR is prepared (the cycle's window moves on)

PERIOD = r"^20[0-9]{2}-Q[1-4]$"  # a quarter of the years 2000 to 2099 (the horizon of the edge's dates)
_PERIOD = re.compile(PERIOD)
TIER_ORDER = [Tier.registered, Tier.silver, Tier.gold, Tier.platinum]  # low to high


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


LEGACY_ACTIVITY_NAMES: dict[str, str] = {}


class Metric(StrEnum):
    revenue = "revenue"  # closed-won revenue against the target
    pipeline = "pipeline"  # open registered pipeline against the target times the policy's coverage
    registrations = "registrations"  # deal registrations in the period against the tier's goal
    win_rate = "win_rate"  # won / (won + lost) of the deals closed in the period
    certifications = "certifications"  # current certifications against the tier's requirement
    mdf = "mdf"  # MDF utilization and ROI (absent until the MDF journey exists)
    onboarding = "onboarding"  # the onboarding state
    responsiveness = "responsiveness"  # overdue milestones and action items


class Band(StrEnum):
    healthy = "healthy"
    watch = "watch"
    at_risk = "at_risk"


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


class Recommendation(StrEnum):
    promote = "promote"
    hold = "hold"
    demote = "demote"


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


# ---------------------------------------------------------------------------- periods


def check_period(period: str) -> str:
    if not _PERIOD.fullmatch(period):
        raise ValueError(f"period must look like 2027-Q1, not {period!r}")
    return period


def _split(period: str) -> tuple[int, int]:
    check_period(period)
    return int(period[:4]), int(period[-1])


def period_of(moment: datetime, tz: str) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def shift(period: str, quarters: int) -> str:
    year, q = _split(period)
    n = year * 4 + (q - 1) + quarters
    return f"{n // 4}-Q{n % 4 + 1}"


def period_bounds(period: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of the quarter in the program's time zone, in UTC."""
    year, q = _split(period)
    zone = ZoneInfo(tz)
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=zone)
    ny, nq = _split(shift(period, 1))
    end = datetime(ny, 3 * (nq - 1) + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def due_at(due: date, tz: str) -> datetime:
    """An item due on `due` is due by the end of that day in the program's time zone (UTC)."""
    return datetime.combine(day_after(due), time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def period_index(period: str) -> int:
    year, q = _split(period)
    return year * 4 + q - 1


def held_this_period(period: str, every_quarters: int) -> bool:
    """A cadence of every N quarters holds its reviews in the quarters whose index N divides
    (quarterly: all; semi-annual: Q2 and Q4 reviewed, i.e. the first and third QBR of a year)."""
    return period_index(period) % every_quarters == 0


# ---------------------------------------------------------------------------- scorecard inputs


class MdfFigures(BaseModel):
    """MDF of a partner in a period (from the MDF journey's ledger): what it was allocated, what
    it claimed, and the revenue of the deals linked to its activities."""

    currency: str
    allocated_minor: int
    claimed_minor: int
    unclaimed_minor: int
    claim_deadline: date | None = None
    attributed_revenue_minor: int = 0


class ScorecardInputs(BaseModel):
    """Everything a scorecard is computed from, as read from the database (kept with it)."""

    currency: str
    window_start: datetime
    window_end: datetime
    revenue_minor: int = 0
    revenue_deals: int = 0
    other_currency_deals: int = 0  # closed-won in another currency: not counted, listed
    target_minor: int = 0
    target_source: str = "tier_default"  # "partner" (set by ops or the CAM) or "tier_default"
    pipeline_count: int = 0
    pipeline_minor: int = 0
    registrations: int = 0
    approved: int = 0  # of the registrations decided in the period
    decided: int = 0
    won: int = 0
    lost: int = 0
    certifications_current: int = 0
    certifications_required: int = 0
    certifications_lapsed: list[str] = Field(default_factory=list)  # tracks, for the recommended actions
    mdf: MdfFigures | None = None
    onboarding_state: str = "active"
    overdue_milestones: int = 0
    overdue_actions: int = 0


class MetricScore(BaseModel):
    metric: Metric
    value: float | None  # the measured figure (a ratio, a count); None: absent
    score: float | None  # 0-100; None: the metric is absent and its weight goes to the others
    weight: float
    note: str


class TierReview(BaseModel):
    recommendation: Recommendation
    to_tier: Tier | None  # None when holding
    reasons: list[str]


class Scorecard(BaseModel):
    partner_id: str
    period: str
    tier: Tier
    metrics: list[MetricScore]
    score: float
    band: Band
    trend: float | None  # the score minus the mean of the last (up to four) periods' scores
    history: list[tuple[str, float]] = Field(default_factory=list)  # (period, score), oldest first
    actions: list[str] = Field(default_factory=list)  # the recommended actions (long tail)
    review: TierReview | None = None


# ---------------------------------------------------------------------------- arithmetic


def _clamp(x: float) -> float:
    return round(max(0.0, min(100.0, x)), 1)


def _ratio_score(value: float, goal: float) -> float:
    return 100.0 if goal <= 0 else _clamp(100.0 * value / goal)


def money(minor: int, currency: str) -> str:
    return f"{currency} {minor / 100:,.2f}"


def score_metrics(inp: ScorecardInputs, policy: QbrPolicy, tier: Tier) -> list[MetricScore]:
    """Each metric 0-100 against the policy's thresholds; absent metrics have no score."""
    rules, w = policy.tiers[tier], policy.weights
    out: list[MetricScore] = []

    def add(metric: Metric, value: float | None, score: float | None, note: str) -> None:
        out.append(MetricScore(metric=metric, value=value, score=score, weight=w.get(metric, 0.0), note=note))

    if inp.target_minor > 0:
        attainment = inp.revenue_minor / inp.target_minor
        add(Metric.revenue, round(attainment, 4), _ratio_score(attainment, 1.0),
            f"{money(inp.revenue_minor, inp.currency)} closed-won of a {money(inp.target_minor, inp.currency)} "
            f"target ({inp.target_source.replace('_', ' ')})")  # fmt: skip
        goal = inp.target_minor * policy.pipeline_coverage
        add(Metric.pipeline, round(inp.pipeline_minor / goal, 4), _ratio_score(inp.pipeline_minor, goal),
            f"{inp.pipeline_count} open registrations worth {money(inp.pipeline_minor, inp.currency)}")  # fmt: skip
    else:
        add(Metric.revenue, None, None, "no revenue target: not scored")
        add(Metric.pipeline, None, None, "no revenue target: not scored")
    add(Metric.registrations, inp.registrations, _ratio_score(inp.registrations, rules.registrations_goal),
        f"{inp.registrations} registered (goal {rules.registrations_goal}), "
        f"{inp.approved} of {inp.decided} decided approved")  # fmt: skip
    closed = inp.won + inp.lost
    if closed:
        rate = inp.won / closed
        add(Metric.win_rate, round(rate, 4), _ratio_score(rate, policy.win_rate_goal), f"{inp.won} won of {closed}")
    else:
        add(Metric.win_rate, None, None, "no deal closed in the period: not scored")
    required = inp.certifications_required
    add(Metric.certifications, inp.certifications_current, _ratio_score(inp.certifications_current, required),
        f"{inp.certifications_current} current of {required} required")  # fmt: skip
    if inp.mdf is None:
        add(Metric.mdf, None, None, "no MDF figures: not scored")
    elif inp.mdf.allocated_minor <= 0:
        add(Metric.mdf, None, None, "no MDF allocated: not scored")
    else:
        used = inp.mdf.claimed_minor / inp.mdf.allocated_minor
        add(Metric.mdf, round(used, 4), _ratio_score(used, policy.mdf_utilization_goal),
            f"{money(inp.mdf.claimed_minor, inp.mdf.currency)} claimed of "
            f"{money(inp.mdf.allocated_minor, inp.mdf.currency)}; "
            f"{money(inp.mdf.attributed_revenue_minor, inp.mdf.currency)} of revenue attributed")  # fmt: skip
    onboarding = {"active": 100.0, "onboarding": 50.0, "at_risk": 0.0}.get(inp.onboarding_state, 0.0)
    add(Metric.onboarding, onboarding, onboarding, f"onboarding {inp.onboarding_state}")
    overdue = inp.overdue_milestones + inp.overdue_actions
    add(Metric.responsiveness, overdue, _clamp(100.0 - policy.overdue_penalty * overdue),
        f"{inp.overdue_milestones} milestones and {inp.overdue_actions} action items overdue")  # fmt: skip
    return out


def weighted_score(metrics: list[MetricScore]) -> float:
    """The weighted mean of the metrics present (an absent metric's weight is spread over the
    others by re-weighting); 0 when none is present."""
    present = [m for m in metrics if m.score is not None and m.weight > 0]
    total = sum(m.weight for m in present)
    if total <= 0:
        return 0.0
    return round(sum(m.weight * (m.score or 0.0) for m in present) / total, 1)


def band(score: float, policy: QbrPolicy) -> Band:
    if score >= policy.healthy_from:
        return Band.healthy
    if score >= policy.watch_from:
        return Band.watch
    return Band.at_risk


def trend(score: float, previous: list[float]) -> float | None:
    """Against the mean of the last four periods' scores (fewer if there are fewer); None without any."""
    last = previous[-4:]
    if not last:
        return None
    return round(score - sum(last) / len(last), 1)


def percentiles(scores: list[float]) -> list[float]:
    """The percentile of each score within its group (mid-rank: ties share the same percentile,
    100 * (below + equal / 2) / n), in the order given."""
    n = len(scores)
    return [
        round(100.0 * (sum(1 for o in scores if o < s) + sum(1 for o in scores if o == s) / 2) / n, 1) for s in scores
    ]


def recommend_actions(inp: ScorecardInputs, metrics: list[MetricScore], limit: int = 3) -> list[str]:
    """The two or three actions the rules recommend, most valuable first."""
    out: list[str] = []
    if inp.mdf is not None and inp.mdf.unclaimed_minor > 0:
        by = f" before {inp.mdf.claim_deadline:%d %B %Y}" if inp.mdf.claim_deadline else ""
        out.append(f"Claim your {money(inp.mdf.unclaimed_minor, inp.mdf.currency)} of MDF{by}")
    if inp.certifications_lapsed:
        out.append(f"Renew the {inp.certifications_lapsed[0]} certification")
    elif inp.certifications_current < inp.certifications_required:
        missing = inp.certifications_required - inp.certifications_current
        out.append(f"Certify {missing} more {'person' if missing == 1 else 'people'} to meet your tier's requirement")
    if inp.registrations == 0 or inp.pipeline_count == 0:
        out.append("Register your next deal")
    if inp.overdue_milestones:
        out.append(f"Complete your onboarding: {inp.overdue_milestones} step(s) overdue")
    if inp.overdue_actions:
        out.append(f"Close your {inp.overdue_actions} overdue action item(s)")
    return out[:limit]


def review_tier(tier: Tier, inp: ScorecardInputs, score: float, policy: QbrPolicy) -> TierReview:
    """Promote / hold / demote by the tier's rules, with the reasons and figures."""
    rules = policy.tiers[tier]
    attainment = inp.revenue_minor / inp.target_minor if inp.target_minor > 0 else None
    idx = TIER_ORDER.index(tier)
    below: list[str] = []
    if rules.demote_below_score is not None and score < rules.demote_below_score:
        below.append(f"score {score:g} below {rules.demote_below_score:g}")
    if (
        attainment is not None
        and rules.demote_below_attainment is not None
        and (attainment < rules.demote_below_attainment)
    ):
        below.append(f"revenue {attainment:.0%} of target, below {rules.demote_below_attainment:.0%}")
    if inp.certifications_current < inp.certifications_required:
        below.append(f"{inp.certifications_current} current certifications of {inp.certifications_required} required")
    if below and idx > 0:
        return TierReview(recommendation=Recommendation.demote, to_tier=TIER_ORDER[idx - 1], reasons=below)
    if idx + 1 < len(TIER_ORDER) and rules.promote_min_score is not None:
        upper = TIER_ORDER[idx + 1]
        need = policy.tiers[upper].certifications_required
        ok = [
            score >= rules.promote_min_score,
            attainment is not None and attainment >= rules.promote_min_attainment,
            inp.registrations >= rules.promote_min_registrations,
            inp.certifications_current >= need,
        ]
        if all(ok):
            return TierReview(
                recommendation=Recommendation.promote, to_tier=upper,
                reasons=[
                    f"score {score:g} at least {rules.promote_min_score:g}",
                    f"revenue {attainment:.0%} of target, at least {rules.promote_min_attainment:.0%}",
                    f"{inp.registrations} registrations, at least {rules.promote_min_registrations}",
                    f"{inp.certifications_current} current certifications, {upper.value} needs {need}",
                ],
            )  # fmt: skip
    return TierReview(recommendation=Recommendation.hold, to_tier=None, reasons=["inside the tier's rules"])


def scorecard(
    partner_id: str, period: str, tier: Tier, inp: ScorecardInputs, policy: QbrPolicy, previous: list[float]
) -> Scorecard:
    metrics = score_metrics(inp, policy, tier)
    total = weighted_score(metrics)
    return Scorecard(
        partner_id=partner_id, period=period, tier=tier, metrics=metrics, score=total, band=band(total, policy),
        trend=trend(total, previous), actions=recommend_actions(inp, metrics),
        review=review_tier(tier, inp, total, policy),
    )  # fmt: skip


def trend_svg(points: list[tuple[str, float]], width: int = 320, height: int = 100) -> str:
    """The score over the periods as a small inline SVG line chart (for the pre-read email)."""
    if not points:
        return ""
    step = width / max(len(points) - 1, 1)
    coords = [
        (round(i * step, 1), round(height - 10 - (s / 100.0) * (height - 20), 1)) for i, (_, s) in enumerate(points)
    ]
    path = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="3" fill="#c28a00"/>' for x, y in coords)
    labels = "".join(
        f'<text x="{x}" y="{height}" font-size="9">{p}</text>' for (x, _), (p, _) in zip(coords, points, strict=True)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 40}" height="{height + 5}" role="img" '
        f'aria-label="score trend"><polyline points="{path}" fill="none" stroke="#c28a00" stroke-width="2"/>'
        f"{dots}{labels}</svg>"
    )


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
    in_flight: list[str] = Field(default_factory=list)  # children not yet prepared
    started: int = 0
    prepared: int = 0
    existing: int = 0  # children that already existed (a second run for the period)
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
