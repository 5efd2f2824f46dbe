"""The scorecard of a partner's QBR: each metric scored against the policy's thresholds, the
weighted score, its band and trend, the recommended actions and the tier review.

The scoring is pure arithmetic on the inputs the activity read from the database, so any figure
can be explained and recomputed from its snapshot."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from domain.enums import Tier

if TYPE_CHECKING:
    from journeys.qbr.policy import QbrPolicy

TIER_ORDER = [Tier.registered, Tier.silver, Tier.gold, Tier.platinum]  # low to high


class Metric(StrEnum):
    revenue = "revenue"  # closed-won revenue against the target
    pipeline = "pipeline"  # open registered pipeline against the target times the policy's coverage
    registrations = "registrations"  # deal registrations in the period against the tier's goal
    win_rate = "win_rate"  # won / (won + lost) of the deals closed in the period
    certifications = "certifications"  # current certifications against the tier's requirement
    mdf = "mdf"  # MDF utilization and ROI (absent until the MDF journey exists)
    onboarding = "onboarding"  # the onboarding state
    responsiveness = "responsiveness"  # overdue milestones and action items
    leads = "leads"  # lead offers: acceptance rate, median time to accept, conversion (only with offers)


class Band(StrEnum):
    healthy = "healthy"
    watch = "watch"
    at_risk = "at_risk"


class Recommendation(StrEnum):
    promote = "promote"
    hold = "hold"
    demote = "demote"


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


class LeadFigures(BaseModel):
    """The partner's lead offers answered or expired in the window (from the leads journey): how
    many it accepted, the median time from offer to acceptance, and how many of the leads it
    accepted were converted (a deal credited to them)."""

    offers: int  # accepted + declined + expired in the window
    accepted: int
    median_hours_to_accept: float | None = None  # calendar hours; None: nothing accepted
    converted: int = 0  # of the `accepted`


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
    leads: LeadFigures | None = None  # None: no lead offer answered or expired in the window
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
        add(
            Metric.revenue,
            round(attainment, 4),
            _ratio_score(attainment, 1.0),
            f"{money(inp.revenue_minor, inp.currency)} closed-won of a {money(inp.target_minor, inp.currency)} "
            f"target ({inp.target_source.replace('_', ' ')})",
        )
        goal = inp.target_minor * policy.pipeline_coverage
        add(
            Metric.pipeline,
            round(inp.pipeline_minor / goal, 4),
            _ratio_score(inp.pipeline_minor, goal),
            f"{inp.pipeline_count} open registrations worth {money(inp.pipeline_minor, inp.currency)}",
        )
    else:
        add(Metric.revenue, None, None, "no revenue target: not scored")
        add(Metric.pipeline, None, None, "no revenue target: not scored")
    add(
        Metric.registrations,
        inp.registrations,
        _ratio_score(inp.registrations, rules.registrations_goal),
        f"{inp.registrations} registered (goal {rules.registrations_goal}), "
        f"{inp.approved} of {inp.decided} decided approved",
    )
    closed = inp.won + inp.lost
    if closed:
        rate = inp.won / closed
        add(Metric.win_rate, round(rate, 4), _ratio_score(rate, policy.win_rate_goal), f"{inp.won} won of {closed}")
    else:
        add(Metric.win_rate, None, None, "no deal closed in the period: not scored")
    required = inp.certifications_required
    add(
        Metric.certifications,
        inp.certifications_current,
        _ratio_score(inp.certifications_current, required),
        f"{inp.certifications_current} current of {required} required",
    )
    if inp.mdf is None:
        add(Metric.mdf, None, None, "no MDF figures: not scored")
    elif inp.mdf.allocated_minor <= 0:
        add(Metric.mdf, None, None, "no MDF allocated: not scored")
    else:
        used = inp.mdf.claimed_minor / inp.mdf.allocated_minor
        add(
            Metric.mdf,
            round(used, 4),
            _ratio_score(used, policy.mdf_utilization_goal),
            f"{money(inp.mdf.claimed_minor, inp.mdf.currency)} claimed of "
            f"{money(inp.mdf.allocated_minor, inp.mdf.currency)}; "
            f"{money(inp.mdf.attributed_revenue_minor, inp.mdf.currency)} of revenue attributed",
        )
    onboarding = {"active": 100.0, "onboarding": 50.0, "at_risk": 0.0}.get(inp.onboarding_state, 0.0)
    add(Metric.onboarding, onboarding, onboarding, f"onboarding {inp.onboarding_state}")
    overdue = inp.overdue_milestones + inp.overdue_actions
    add(
        Metric.responsiveness,
        overdue,
        _clamp(100.0 - policy.overdue_penalty * overdue),
        f"{inp.overdue_milestones} milestones and {inp.overdue_actions} action items overdue",
    )
    if inp.leads is not None and inp.leads.offers > 0:  # listed only for partners offered leads
        value, score, note = lead_score(inp.leads, policy)
        add(Metric.leads, value, score, note)
    return out


def lead_score(f: LeadFigures, policy: QbrPolicy) -> tuple[float, float, str]:
    """The lead metric: its value is the acceptance rate; its score the mean of the acceptance
    rate against `lead_acceptance_goal`, the median time to accept against `lead_accept_hours_goal`
    (at or under it: 100; over it: goal / median) and, once a lead was accepted, the conversion
    rate against `lead_conversion_goal`."""
    rate = f.accepted / f.offers
    parts = [_ratio_score(rate, policy.lead_acceptance_goal)]
    note = f"{f.accepted} of {f.offers} lead offers accepted"
    if f.median_hours_to_accept is not None:
        hours, goal = f.median_hours_to_accept, policy.lead_accept_hours_goal
        parts.append(100.0 if hours <= goal else _clamp(100.0 * goal / hours))
        note += f", median {hours:g} h to accept (goal {goal:g} h)"
    if f.accepted:
        parts.append(_ratio_score(f.converted / f.accepted, policy.lead_conversion_goal))
        note += f"; {f.converted} of {f.accepted} converted"
    return round(rate, 4), round(sum(parts) / len(parts), 1), note


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
                recommendation=Recommendation.promote,
                to_tier=upper,
                reasons=[
                    f"score {score:g} at least {rules.promote_min_score:g}",
                    f"revenue {attainment:.0%} of target, at least {rules.promote_min_attainment:.0%}",
                    f"{inp.registrations} registrations, at least {rules.promote_min_registrations}",
                    f"{inp.certifications_current} current certifications, {upper.value} needs {need}",
                ],
            )
    return TierReview(recommendation=Recommendation.hold, to_tier=None, reasons=["inside the tier's rules"])


def scorecard(
    partner_id: str, period: str, tier: Tier, inp: ScorecardInputs, policy: QbrPolicy, previous: list[float]
) -> Scorecard:
    metrics = score_metrics(inp, policy, tier)
    total = weighted_score(metrics)
    return Scorecard(
        partner_id=partner_id,
        period=period,
        tier=tier,
        metrics=metrics,
        score=total,
        band=band(total, policy),
        trend=trend(total, previous),
        actions=recommend_actions(inp, metrics),
        review=review_tier(tier, inp, total, policy),
    )


# ---------------------------------------------------------------------------- the next tier


class Requirement(BaseModel):
    """One bar of a promotion, in plain figures: what the tier review needs and what the partner has."""

    key: str  # score | revenue | registrations | certifications
    need: float  # revenue in minor units of `currency`
    have: float
    met: bool

    @property
    def missing(self) -> float:
        return 0.0 if self.met else round(self.need - self.have, 1)


class NextTier(BaseModel):
    """What it takes to reach the next tier: every bar of the tier review's promotion rule."""

    to_tier: Tier
    currency: str
    target_minor: int  # the revenue target the attainment is measured against (0: none)
    attainment: float  # the share of the target the revenue must reach
    requirements: list[Requirement]

    @property
    def ready(self) -> bool:
        return all(r.met for r in self.requirements)


def next_tier(tier: Tier, inp: ScorecardInputs, score: float, policy: QbrPolicy) -> NextTier | None:
    """The bars `review_tier` promotes on, against the partner's figures: the score, the revenue
    (the target times the promotion's attainment, in money), the registrations and the current
    certifications the next tier needs. None at the top tier or when the tier is never promoted.
    Each bar is met at exactly its figure, as the tier review counts it."""
    rules = policy.tiers[tier]
    idx = TIER_ORDER.index(tier)
    if idx + 1 >= len(TIER_ORDER) or rules.promote_min_score is None:
        return None
    upper = TIER_ORDER[idx + 1]
    attainment = rules.promote_min_attainment
    revenue_need = math.ceil(Decimal(inp.target_minor) * Decimal(str(attainment)))
    revenue_met = inp.target_minor > 0 and inp.revenue_minor / inp.target_minor >= attainment
    certs_need = policy.tiers[upper].certifications_required
    return NextTier(
        to_tier=upper,
        currency=inp.currency,
        target_minor=inp.target_minor,
        attainment=attainment,
        requirements=[
            Requirement(key="score", need=rules.promote_min_score, have=score, met=score >= rules.promote_min_score),
            Requirement(key="revenue", need=revenue_need, have=inp.revenue_minor, met=revenue_met),
            Requirement(
                key="registrations",
                need=rules.promote_min_registrations,
                have=inp.registrations,
                met=inp.registrations >= rules.promote_min_registrations,
            ),
            Requirement(
                key="certifications",
                need=certs_need,
                have=inp.certifications_current,
                met=inp.certifications_current >= certs_need,
            ),
        ],
    )
