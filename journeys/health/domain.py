"""Partner health: the pure rules. A partner starts at 100 and every signal a journey reports
(journeys/<name>/health.py) takes off its policy weight times its severity; the score, its band,
what changed since the last evaluation, and when the change is an early warning. Every point is
a listed contribution, so the contributions always sum to the score."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.journeys import Coverage
from journeys.health.contract import HealthPolicy, Signal
from journeys.health.events import HealthChanged

JOURNEY = "health"
BASELINE = 100

REFRESH = "refresh"  # signal: evaluate now (a journey's event moved a signal)


REENGAGE_PATCH = "health-reengage"  # the re-engagement of dark partners (runs recorded before replay without)
# The re-engagement email names its next step's kind (`step_kind`), so a German reader gets German words.
STEP_KIND_PATCH = "health-reengage-step-kind"
# The sweep (journeys/health/sweep.py) tells `health-{partner}` of an evaluation that may open or
# close an early-warning episode (signal SWEPT): runs recorded before replay without it.
SWEPT_PATCH = "health-swept"
SWEPT = "swept"  # signal: the sweep's evaluation of the partner (its `_warn` decides)
SWEEP = "health-sweep"  # the program's one sweep workflow


class HealthActivity:
    EVALUATE = "health.evaluate"
    RECORD_ALERT = "health.record_alert"
    RECORD_REENGAGEMENT = "health.record_reengagement"
    SWEEP = "health.sweep"


class HealthState(StrEnum):
    """The journey itself: it watches the partner for as long as the partner exists."""

    watching = "watching"
    alerting = "alerting"  # an early-warning episode is open (its alert was sent)


class HealthBand(StrEnum):
    healthy = "healthy"
    watch = "watch"
    at_risk = "at_risk"


RANK = {HealthBand.healthy: 0, HealthBand.watch: 1, HealthBand.at_risk: 2}


class Contribution(BaseModel):
    key: str  # "baseline", "floor", or the signal's key
    kind: str
    points: int
    what: str

    def line(self) -> str:
        sign = "+" if self.points >= 0 else "\u2212"
        return f"{sign}{abs(self.points)}: {self.what}"


class Score(BaseModel):
    score: int
    band: HealthBand
    contributions: list[Contribution]


def band_of(score: int, policy: HealthPolicy) -> HealthBand:
    if score >= policy.healthy_from:
        return HealthBand.healthy
    if score >= policy.watch_from:
        return HealthBand.watch
    return HealthBand.at_risk


def score(signals: Iterable[Signal], policy: HealthPolicy) -> Score:
    """100, less each signal's weight times its severity (whole points), never under 0: the
    floor is a contribution of its own, so the contributions sum to the score."""
    parts = [Contribution(key="baseline", kind="baseline", points=BASELINE, what="baseline")]
    seen: set[str] = set()
    for s in sorted(signals, key=lambda s: s.key):
        points = round(policy.weights.get(s.kind, 0) * s.severity)  # type: ignore[call-overload]
        if points == 0 or s.key in seen:
            continue
        seen.add(s.key)
        parts.append(Contribution(key=s.key, kind=s.kind, points=-points, what=s.what))
    total = sum(p.points for p in parts)
    if total < 0:
        parts.append(Contribution(key="floor", kind="floor", points=-total, what="the score stops at 0"))
        total = 0
    return Score(score=total, band=band_of(total, policy), contributions=parts)


def changes(before: list[Contribution], after: list[Contribution]) -> list[Contribution]:
    """What moved the score: contributions that appeared (as they are) and those that went (their
    points given back); the floor and the baseline are not reasons."""
    old = {c.key: c for c in before if c.kind not in ("baseline", "floor")}
    new = {c.key: c for c in after if c.kind not in ("baseline", "floor")}
    moved = [c for k, c in new.items() if k not in old or old[k].points != c.points]
    moved += [
        Contribution(key=k, kind=c.kind, points=-c.points, what=f"no longer: {c.what}")
        for k, c in old.items()
        if k not in new or new[k].points != c.points
    ]
    return sorted(moved, key=lambda c: (c.points, c.key))


def alert_reason(
    score: int, band: HealthBand, previous_band: HealthBand | None, peak: int | None, policy: HealthPolicy
) -> str | None:
    """An early warning: the band got worse, or the score is `drop_points` or more under its peak
    of the last `drop_days`. None: nothing to warn about."""
    if previous_band is not None and RANK[band] > RANK[previous_band]:
        return f"health went from {previous_band.value} to {band.value} ({score})"
    if peak is not None and peak - score >= policy.drop_points:
        return f"health dropped {peak - score} points (from {peak} to {score}) within {policy.drop_days:g} days"
    return None


def episode_over(score: int, peak: int | None, policy: HealthPolicy) -> bool:
    """An episode ends once the partner is healthy again and no drop is open."""
    return band_of(score, policy) == HealthBand.healthy and (peak is None or peak - score < policy.drop_points)


def explain(reason: str, contributions: list[Contribution]) -> list[str]:
    """The lines of an alert: why, then every contribution but the baseline, worst first."""
    lines = [c.line() for c in sorted(contributions, key=lambda c: c.points) if c.kind != "baseline"]
    return [reason, *lines]


# --------------------------------------------------------------------------- re-engagement


def is_dark(last_active: datetime, now: datetime, dark_after: timedelta) -> bool:
    """Dark: nothing from the partner (an action of its own, a portal sign-in) for `dark_after`."""
    return now - last_active >= dark_after


class NextStep(BaseModel):
    kind: str  # the signal kind it answers, or "portal"
    text: str


# What a partner can do about each kind of signal, most helpful first (a tie goes to this order).
STEPS: dict[str, str] = {
    "milestone_overdue": "Complete your onboarding: {what}.",
    "cert_lapsed": "Renew your certification: {what}.",
    "cert_expiring": "Renew your certification before it lapses: {what}.",
    "mdf_unused": "Claim your marketing funds before they expire: {what}.",
    "deal_velocity_low": "Register your next deal: protection starts the day you register it.",
    "qbr_action_overdue": "Close your QBR action item: {what}.",
    "win_rate_low": "Ask your partner team for help on your open deals ({what}).",
}
PORTAL_STEP = NextStep(kind="portal", text="Sign in to the partner portal: your open items and funds are there.")


def next_step(contributions: list[Contribution]) -> NextStep:
    """The one next step that would help a dark partner most: the signal costing it the most points
    that it can act on (ties in the order of STEPS, then by key); none: sign in to the portal."""
    order = list(STEPS)
    actionable = [c for c in contributions if c.kind in STEPS and c.points < 0]
    if not actionable:
        return PORTAL_STEP
    best = min(actionable, key=lambda c: (c.points, order.index(c.kind), c.key))
    return NextStep(kind=best.kind, text=STEPS[best.kind].format(what=best.what))


class Reengagement(BaseModel):
    """A dark partner's re-engagement, carried across continue-as-new."""

    spell: int = Field(0, ge=0, description="dark spells so far (the open one included)")
    open: bool = False
    since: datetime | None = None  # the partner's last activity when the spell opened
    sent: int = 0  # emails of this spell
    last_at: datetime | None = None  # when the spell opened or its last email went
    escalated: bool = False  # ops was told


def emails_now(before: Reengagement, after: Reengagement) -> bool:
    """An email goes with this step (the spell's first, or the next)."""
    return after.sent > (before.sent if before.spell == after.spell else 0)


class ReengageAction(StrEnum):
    none = "none"
    open = "open"  # the partner went dark: the spell opens with its first email
    email = "email"  # the next email of the spell
    escalate = "escalate"  # every email sent and still nothing: ops is told
    close = "close"  # the partner acted (or a CAM covers it now): the spell ends


def reengage_next(
    r: Reengagement,
    *,
    last_active: datetime | None,
    covered: bool,
    now: datetime,
    dark_after: timedelta,
    every: timedelta,
    emails: int,
) -> ReengageAction:
    """The next step of a partner's re-engagement. Only a partner without a CAM (`covered` False)
    is re-engaged; a spell ends as soon as the partner acts (its last activity moves past the one
    the spell opened with); `emails` emails `every` apart, then ops once after another `every`."""
    if r.open:
        moved = last_active is not None and r.since is not None and last_active > r.since
        if covered or moved:
            return ReengageAction.close
        if r.escalated or r.last_at is None or now - r.last_at < every:
            return ReengageAction.none
        return ReengageAction.email if r.sent < emails else ReengageAction.escalate
    if covered or last_active is None or not is_dark(last_active, now, dark_after):
        return ReengageAction.none
    return ReengageAction.open


def reengaged(
    r: Reengagement, action: ReengageAction, *, last_active: datetime | None, now: datetime, emails: int
) -> Reengagement:
    """The re-engagement after `action` (the workflow's state; the emails go with it): a spell
    opens with its first email (if the policy sends any)."""
    if action == ReengageAction.open:
        return Reengagement(spell=r.spell + 1, open=True, since=last_active, sent=min(emails, 1), last_at=now)
    if action == ReengageAction.email:
        return r.model_copy(update={"sent": r.sent + 1, "last_at": now})
    if action == ReengageAction.escalate:
        return r.model_copy(update={"escalated": True, "last_at": now})
    if action == ReengageAction.close:
        return r.model_copy(update={"open": False, "escalated": False})
    return r


# --------------------------------------------------------------------------- program figures


class PartnerFacts(BaseModel):
    """What the program figures read of one partner."""

    enrolled_at: datetime
    last_active: datetime
    first_deal_at: datetime | None = None
    last_deal_at: datetime | None = None


class ProgramFigures(BaseModel):
    partners: int
    active: int = Field(description="partners with a deal registered within health.velocity_days")
    active_rate: float | None = Field(description="active / partners (null without partners)")
    active_rate_target: float
    active_on_target: bool | None
    dark: int = Field(description="partners with no activity of their own for health.dark_days")
    dark_rate: float | None
    dark_rate_target: float
    dark_on_target: bool | None = Field(description="the dark rate is under its target")
    with_a_deal: int = Field(description="partners that registered a deal")
    days_to_first_deal_median: float | None = Field(
        description="median policy days from enrolment to the first deal registered (of those with one)"
    )


def program_figures(
    facts: Iterable[PartnerFacts], now: datetime, policy: HealthPolicy, day: timedelta
) -> ProgramFigures:
    """Active partner rate (a deal within `velocity_days`), dark partner rate (nothing of its own
    for `dark_days`, on target when under `dark_rate_target`), and the median time to first deal."""
    rows = list(facts)
    n = len(rows)
    active = sum(1 for f in rows if f.last_deal_at is not None and now - f.last_deal_at < day * policy.velocity_days)
    dark = sum(1 for f in rows if is_dark(f.last_active, now, day * policy.dark_days))
    firsts = sorted((f.first_deal_at - f.enrolled_at) / day for f in rows if f.first_deal_at is not None)
    median = None
    if firsts:
        mid = len(firsts) // 2
        median = firsts[mid] if len(firsts) % 2 else (firsts[mid - 1] + firsts[mid]) / 2
    active_rate = active / n if n else None
    dark_rate = dark / n if n else None
    return ProgramFigures(
        partners=n,
        active=active,
        active_rate=active_rate,
        active_rate_target=policy.active_rate_target,
        active_on_target=None if active_rate is None else active_rate >= policy.active_rate_target,
        dark=dark,
        dark_rate=dark_rate,
        dark_rate_target=policy.dark_rate_target,
        dark_on_target=None if dark_rate is None else dark_rate < policy.dark_rate_target,
        with_a_deal=len(firsts),
        days_to_first_deal_median=None if median is None else round(median, 2),
    )


# --------------------------------------------------------------------------- the sweep

Ranges = list[tuple[int, int]]  # inclusive ranges of event seqs


def merged(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """The ranges sorted, overlapping and adjacent ones joined."""
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class Batch(BaseModel):
    """What one tick of the sweep takes of the events it read (in seq order)."""

    partners: dict[str, int] = {}  # partner id: its newest health event's seq in the batch
    processed: list[int] = []  # seqs handled (a health event taken, or an event of another type)
    first_unprocessed: int | None = None  # a read event left for the next tick (None: none)


def take(rows: Iterable[tuple[int, str, str]], types: frozenset[str], batch: int, read_all: bool) -> Batch:
    """The events (seq, type, partner id), in seq order, of at most `batch` distinct partners; an
    event of another type is handled as it is read. `read_all`: the rows are every event after
    the cursor (else the read stopped at its limit and what follows the last row is unknown)."""
    partners: dict[str, int] = {}
    processed: list[int] = []
    first: int | None = None
    last = None
    for seq, kind, pid in rows:
        last = seq
        if kind in types:
            if pid not in partners and len(partners) >= batch:
                first = seq
                break
            partners[pid] = seq
        processed.append(seq)
    if first is None and not read_all and last is not None:
        first = last + 1
    return Batch(partners=partners, processed=processed, first_unprocessed=first)


def warns(ev: Evaluation, open_episode: bool, policy: HealthPolicy) -> bool:
    """Whether `health-{partner}` must see an evaluation the sweep made: it may open an
    early-warning episode (none is open) or close the open one. The workflow decides (`_warn`)."""
    if open_episode:
        return episode_over(ev.score, ev.peak, policy)
    return alert_reason(ev.score, ev.band, ev.previous_band, ev.peak, policy) is not None


def health_changed(partner_id: str, ev: Evaluation) -> HealthChanged:
    """The `partner.health_changed` event of an evaluation that changed the score."""
    return HealthChanged(
        partner_id=partner_id,
        score=ev.score,
        band=ev.band.value,
        previous_band=ev.previous_band.value if ev.previous_band else None,
        changes=[c.line() for c in ev.changes],
    )


def advance(
    after: int, seen: Ranges, processed: Iterable[int], first_unprocessed: int | None, settled: int
) -> tuple[int, Ranges]:
    """The sweep's cursor after a tick: every seq up to the new `after` is handled or will never
    be (a seq not in the table at or under `settled`, the newest seq written longer ago than any
    transaction lasts, was rolled back); `seen`: the handled seqs above it (an event committed
    late, under a seq the sweep has passed, is still read). Never goes back."""
    handled = merged([*seen, *((s, s) for s in processed)])
    x = max(settled, after) + 1
    for a, b in handled:
        if a > x:
            break
        x = max(x, b + 1)
    new = x - 1
    if first_unprocessed is not None:
        new = min(new, first_unprocessed - 1)
    new = max(new, after)
    return new, [(max(a, new + 1), b) for a, b in handled if b > new]


# --------------------------------------------------------------------------- messages


class HealthInput(BaseModel):
    partner_id: str
    partner_name: str = ""
    coverage: Coverage
    policy_version: int | None = None
    generation: int = Field(1, ge=1, description="the run's number (continue-as-new adds one)")
    episodes: int = Field(0, ge=0, description="early-warning episodes so far")
    alerting: bool = False  # an episode is open
    reengagement: Reengagement = Field(default_factory=Reengagement)


class EvaluateInput(BaseModel):
    idempotency_key: str
    partner_id: str
    policy_version: int
    activity: bool = False  # also read the partner's last activity (for the re-engagement)


class Evaluation(BaseModel):
    score: int
    band: HealthBand
    previous_band: HealthBand | None = None
    peak: int | None = None  # highest score within the drop window (before this one)
    changed: bool = False
    contributions: list[Contribution] = []
    changes: list[Contribution] = []
    last_active: datetime | None = None  # the partner's last activity (when asked for)


class ReengagementInput(BaseModel):
    idempotency_key: str
    partner_id: str
    spell: int
    action: ReengageAction
    at: datetime
    emails: int = 0  # sent in the spell so far
    step: str = ""  # the next step the email carried
    since: datetime | None = None  # the partner's last activity when the spell opened


class AlertInput(BaseModel):
    idempotency_key: str
    partner_id: str
    episode: int
    opened: bool  # False: the episode closed
    reason: str = ""
    at: datetime


class HealthProgress(BaseModel):
    partner_id: str
    state: HealthState
    score: int | None
    band: HealthBand | None
    evaluations: int
    episodes: int
    reengagement: Reengagement | None = None


class SweepTick(BaseModel):
    after: int | None = None  # None: start at the newest event (what came before is not swept)
    seen: Ranges = []


class SweepResult(BaseModel):
    after: int
    seen: Ranges = []
    every_seconds: float = 0  # the policy's health.sweep_seconds (0: the sweep is off, it ends)
    more: bool = False  # events left for the next tick: it follows at once
    events: int = 0  # health events taken
    partners: int = 0  # partners evaluated
    changed: int = 0  # scores that changed (rows written, partner.health_changed published)
    signalled: int = 0  # entity workflows told (SWEPT) for their early warning


class SweepInput(BaseModel):
    """The sweep's cursor and its totals, carried across continue-as-new."""

    after: int | None = None
    seen: Ranges = []
    ticks: int = 0
    events: int = 0
    partners: int = 0
    changed: int = 0
    signalled: int = 0


def describe(inp: HealthInput) -> tuple[str, str]:
    return f"Health of {inp.partner_name or inp.partner_id}", f"partner {inp.partner_id}, run {inp.generation}"
