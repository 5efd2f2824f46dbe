"""Today's QBR items: tier reviews waiting for this user's decision (approve or override inline),
CAM-led QBRs still to schedule (deadline: the policy's `schedule_deadline_days`) and overdue
action items; the Portfolio's health band, score and trend columns (the latest scorecard; no
column while no scorecard exists); the Partner page's scorecard trend with its tier review; the
inline tier decision (approve the recommendation, or override it with a reason)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import Form, Path
from sqlalchemy import func, select

from api import journeys
from api.deps import load_partner
from api.schemas import SCREEN_LINE
from api.web.actions import ActionDep, Notice, Reason, Refusal, action, status_of
from api.web.actors import actor_names
from api.web.items import Section, TodayContext, TodayItem, column, provider, section
from domain.charts import trend_svg
from domain.enums import Role, Tier
from domain.types import clean_text
from journeys.qbr import service
from journeys.qbr.domain import DECIDE_TIER, JOURNEY, PERIOD, QbrState, ReviewOutcome, ReviewState
from journeys.qbr.models import Qbr, QbrActionItem, QbrScorecard, QbrTierReview
from journeys.qbr.periods import due_at
from journeys.qbr.schemas import TierDecisionBody
from store.models import Partner

HISTORY = 8  # scorecards on the partner page's chart


def _reasons(review: QbrTierReview) -> str:
    return "; ".join(str(r.get("text", r) if isinstance(r, dict) else r) for r in review.reasons or [])[:300]


@provider("qbr")
async def qbr_items(ctx: TodayContext) -> list[TodayItem]:
    if ctx.principal.role == Role.partner:
        return []
    return await _tier_reviews(ctx) + await _to_schedule(ctx) + await _overdue_actions(ctx)


async def _tier_reviews(ctx: TodayContext) -> list[TodayItem]:
    stmt = ctx.responsible(
        select(QbrTierReview, Partner)
        .join(Partner, Partner.id == QbrTierReview.partner_id)
        .where(QbrTierReview.state == ReviewState.pending.value)
        .order_by(QbrTierReview.updated_at)
    )
    items = []
    for review, partner in (await ctx.session.execute(stmt)).all():
        change = f"{review.from_tier} → {review.to_tier}" if review.to_tier else review.from_tier
        items.append(
            TodayItem(
                kind="qbr",
                label="Tier review",
                partner_id=partner.id,
                partner_name=partner.name,
                title=f"{review.period}: {review.recommendation} ({change})",
                detail=_reasons(review) or "the scorecard's rules recommend it",
                deadline=None,  # the policy sets no decision SLA for tier reviews
                deadline_label="",
                action="tier_decision",
                entity_id=review.period,
                extra={"recommendation": review.recommendation},
            )
        )
    return items


async def _to_schedule(ctx: TodayContext) -> list[TodayItem]:
    stmt = ctx.responsible(
        select(Qbr, Partner)
        .join(Partner, Partner.id == Qbr.partner_id)
        .where(Qbr.state == QbrState.scheduling.value)
        .order_by(Qbr.updated_at)
    )
    days = ctx.policy.qbr.schedule_deadline_days
    return [
        TodayItem(
            kind="qbr",
            label="QBR to schedule",
            partner_id=partner.id,
            partner_name=partner.name,
            title=f"{qbr.period} business review",
            detail="no meeting proposed yet; the partner, its CAM or ops may propose one",
            deadline=qbr.updated_at + ctx.days(days),
            deadline_label="to schedule by",
            entity_id=f"{partner.id}-{qbr.period}",
        )
        for qbr, partner in (await ctx.session.execute(stmt)).all()
    ]


async def _overdue_actions(ctx: TodayContext) -> list[TodayItem]:
    tz = ctx.policy.qbr.time_zone
    stmt = ctx.responsible(
        select(QbrActionItem, Partner)
        .join(Partner, Partner.id == QbrActionItem.partner_id)
        .where(
            QbrActionItem.done_at.is_(None),
            QbrActionItem.cancelled_at.is_(None),
            QbrActionItem.due <= (ctx.now + timedelta(days=1)).date(),  # narrowed below in the program's zone
        )
        .order_by(QbrActionItem.due, QbrActionItem.item_no)
    )
    items = []
    for item, partner in (await ctx.session.execute(stmt)).all():
        deadline = due_at(item.due, tz)
        if deadline >= ctx.now:
            continue
        items.append(
            TodayItem(
                kind="qbr",
                label="Action item overdue",
                partner_id=partner.id,
                partner_name=partner.name,
                title=item.title,
                detail=f"{item.period} QBR, owner: {item.owner}",
                deadline=deadline,
                deadline_label="was due",
                entity_id=f"{partner.id}-{item.period}-{item.item_no}",
            )
        )
    return items


# ------------------------------------------------------------------ portfolio columns


async def _latest(session, partner_ids) -> dict:
    """Each partner's latest scorecard (None when no partner has one: the columns are left out)."""
    latest = (
        select(QbrScorecard.partner_id, func.max(QbrScorecard.period).label("period"))
        .where(QbrScorecard.partner_id.in_(partner_ids))
        .group_by(QbrScorecard.partner_id)
        .subquery()
    )
    rows = await session.scalars(
        select(QbrScorecard).join(
            latest, (latest.c.partner_id == QbrScorecard.partner_id) & (latest.c.period == QbrScorecard.period)
        )
    )
    return {card.partner_id: card for card in rows.all()}


@column("health_band", "Health", 50)
async def health_band(session, partner_ids, ctx: TodayContext) -> dict | None:
    cards = await _latest(session, partner_ids)
    return {pid: c.band for pid, c in cards.items()} if cards else None


@column("health_score", "Score", 51)
async def health_score(session, partner_ids, ctx: TodayContext) -> dict | None:
    cards = await _latest(session, partner_ids)
    return {pid: round(c.score, 1) for pid, c in cards.items()} if cards else None


@column("health_trend", "Trend", 52)
async def health_trend(session, partner_ids, ctx: TodayContext) -> dict | None:
    cards = await _latest(session, partner_ids)
    return {pid: None if c.trend is None else round(c.trend, 1) for pid, c in cards.items()} if cards else None


# ------------------------------------------------------------------ partner page


@section("qbr")
async def qbr_section(session, partner: Partner, ctx: TodayContext) -> Section | None:
    cards = (
        await session.scalars(
            select(QbrScorecard)
            .where(QbrScorecard.partner_id == partner.id)
            .order_by(QbrScorecard.period.desc())
            .limit(HISTORY)
        )
    ).all()
    if not cards:
        return None
    latest = cards[0]
    rows = [("Period", latest.period), ("Score", f"{latest.score:.1f}"), ("Band", latest.band)]
    if latest.trend is not None:
        rows.append(("Trend", f"{latest.trend:+.1f}"))
    review = await session.get(QbrTierReview, (partner.id, latest.period))
    if review is not None:
        rows.append(
            (
                "Tier review",
                f"{review.recommendation} — {review.state}" + (f" ({review.decided_by})" if review.decided_by else ""),
            )
        )
    points = [(c.period, round(c.score, 1)) for c in reversed(cards)]
    return Section(
        title="Scorecard",
        template="sections/trend.html.j2",
        context={
            "chart": trend_svg(points),
            "caption": f"Health score over the last {len(points)} periods",
            "rows": rows,
        },
        order=50,
    )


# ------------------------------------------------------------------ inline decision

Period = Annotated[str, Path(pattern=PERIOD, description="a quarter, e.g. 2027-Q1")]


@action(JOURNEY, "tier_decision", "/partners/{partner_id}/qbr/{period}/tier-decision")
async def decide_tier(
    partner_id: uuid.UUID,
    period: Period,
    ctx: ActionDep,
    decision: Annotated[str, Form(pattern="^(approve|override)$")],
    reason: Reason = "",
    to_tier: Annotated[str, Form(max_length=20), SCREEN_LINE] = "",
) -> str | Notice:
    """Approve the tier review's recommendation or override it (another tier, or hold) with a
    reason, through the QBR journey's `decide_tier` update."""
    partner = await load_partner(ctx.session, partner_id, ctx.principal)
    try:
        body = TierDecisionBody(
            approve=decision == "approve",
            to_tier=Tier(to_tier) if to_tier and decision == "override" else None,
            reason=clean_text(reason, multiline=True),
        )
    except ValueError as err:
        return Notice(f"tier decision: {err}", "error")
    ctx.about = partner.name
    try:
        arg = await service.decision(ctx.session, ctx.principal, partner, period, body)
        await ctx.session.close()
        outcome = await journeys.run_update(
            ctx.temporal,
            JOURNEY,
            service.entity(partner_id, period),
            DECIDE_TIER,
            arg,
            ReviewOutcome,
            deadline=ctx.deadline,
            progress=f"/partners/{partner_id}/tier-reviews",
        )
    except Refusal as err:
        review = await ctx.session.get(QbrTierReview, (partner_id, period)) if status_of(err) == 409 else None
        if review is None or review.state == ReviewState.pending:
            raise
        who = (await actor_names(ctx.session, [review.decided_by]))[review.decided_by] if review.decided_by else "?"
        return Notice(f"Already decided by {who}: the {period} tier review is {review.state}.", "info")
    return f"{ctx.about}: tier review {outcome.state.value}."
