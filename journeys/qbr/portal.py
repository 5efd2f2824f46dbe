"""The QBR journey in the partner portal: the open action items the partner owns on the home page
(by due date); the scorecard with its trend and what it takes to reach the next tier, in plain
figures from the tier review's rules (`scoring.next_tier`); each QBR: its pre-read (the scorecard,
the open pipeline, last quarter's action items), the meeting's invite to accept in a calendar
(.ics), and completing the action items the partner owns (the journey's `complete_action` update,
as the API does)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Form, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from api import journeys
from api.deps import SessionDep
from api.portal.i18n import N_, Translator
from api.portal.items import PortalActionDep, PortalContext, PortalItem, portal_action, portal_item, portal_view
from api.portal.pages import error_text, render, translator
from api.portal.security import PREFIX, signed_in
from api.schemas import SCREEN_LINE
from domain.charts import trend_svg
from domain.enums import Tier
from domain.errors import NotFound
from journeys.deal import contract as deal
from journeys.qbr import service
from journeys.qbr.domain import (
    COMPLETE_ACTION,
    JOURNEY,
    SCHEDULE,
    ActionDone,
    ActionItem,
    Meeting,
    MeetingProposal,
    Owner,
    QbrState,
)
from journeys.qbr.models import Qbr, QbrActionItem, QbrScorecard
from journeys.qbr.periods import PERIOD, shift
from journeys.qbr.schemas import MeetingBody
from journeys.qbr.scoring import NextTier, ScorecardInputs, next_tier
from store import repo
from store.models import Partner

PeriodPath = Annotated[str, Path(pattern=PERIOD)]
Line = Annotated[str, Form(max_length=40), SCREEN_LINE]
SCHEDULING = {QbrState.scheduling.value, QbrState.scheduled.value, QbrState.pre_read_sent.value}
ItemPath = Annotated[int, Path(ge=1, le=50)]
HISTORY = 8  # periods on the trend


METRICS = {
    "revenue": N_("Revenue against the target"),
    "pipeline": N_("Open pipeline"),
    "registrations": N_("Deal registrations"),
    "win_rate": N_("Win rate"),
    "certifications": N_("Certifications"),
    "mdf": N_("Marketing funds used"),
    "onboarding": N_("Onboarding"),
    "responsiveness": N_("Action items and steps on time"),
}
BANDS = {"healthy": N_("healthy"), "watch": N_("watch"), "at_risk": N_("at risk")}
TIERS = {"registered": N_("Registered"), "silver": N_("Silver"), "gold": N_("Gold"), "platinum": N_("Platinum")}
STATES = {
    "preparing": N_("being prepared"),
    "snapshot_only": N_("scorecard only"),
    "scorecard_sent": N_("scorecard sent"),
    "scheduling": N_("meeting to schedule"),
    "scheduled": N_("meeting scheduled"),
    "pre_read_sent": N_("pre-read sent"),
    "following_up": N_("action items open"),
    "done": N_("done"),
    "missed": N_("missed"),
}
ITEM_STATES = {"open": N_("open"), "done": N_("done"), "dropped": N_("dropped")}
OWNERS = {"partner": N_("you"), "cam": N_("your CAM")}


@portal_item(JOURNEY)
async def action_items(ctx: PortalContext) -> list[PortalItem]:
    stmt = (
        select(QbrActionItem)
        .where(
            QbrActionItem.partner_id == ctx.partner_id,
            QbrActionItem.owner == Owner.partner.value,
            QbrActionItem.done_at.is_(None),
            QbrActionItem.cancelled_at.is_(None),
        )
        .order_by(QbrActionItem.due)
    )
    t = ctx.t
    return [
        PortalItem(
            kind=JOURNEY,
            label=t.gettext("QBR action item"),
            title=item.title,
            detail=t.gettext("agreed at the %(period)s review", period=item.period),
            deadline=datetime.combine(item.due, time(23, 59), UTC),
            deadline_label=t.gettext("due"),
            link=f"{PREFIX}/qbr/{item.period}",
            action="qbr/action_done.html.j2",
            entity_id=f"{item.period}/{item.item_no}",
        )
        for item in (await ctx.session.scalars(stmt)).all()
    ]


WHAT = {
    "score": N_("Score"),
    "revenue": N_("Revenue this quarter"),
    "registrations": N_("Deal registrations this quarter"),
    "certifications": N_("Current certifications"),
}


def requirement_lines(found: NextTier, t: Translator) -> list[tuple[str, str, bool]]:
    """Each bar of the next tier as (what, the figures in words, met)."""
    lines = []
    for r in found.requirements:
        if r.key != "revenue":
            counts = {"have": t.number(r.have), "need": t.number(r.need), "missing": t.number(r.missing)}
            text = (
                "%(have)s of %(need)s points: %(missing)s more"
                if r.key == "score"
                else "%(have)s of %(need)s: %(missing)s more"
            )
            figures = t.gettext(text, **counts)
        elif found.target_minor <= 0:
            figures = t.gettext("no revenue target for this quarter yet: your CAM sets it")
        else:
            figures = t.gettext(
                "%(have)s closed-won of %(need)s (%(share)s of your %(target)s target): %(missing)s more",
                have=t.money(int(r.have), found.currency),
                need=t.money(int(r.need), found.currency),
                share=t.percent(found.attainment),
                target=t.money(found.target_minor, found.currency),
                missing=t.money(int(r.missing), found.currency),
            )
        lines.append((t.gettext(WHAT[r.key]), figures, r.met))
    return lines


async def _cards(session, partner_id, limit: int = HISTORY) -> list[QbrScorecard]:
    stmt = (
        select(QbrScorecard)
        .where(QbrScorecard.partner_id == partner_id)
        .order_by(QbrScorecard.period.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


def _chart(cards: list[QbrScorecard], t: Translator):
    points = [(c.period, round(c.score, 1)) for c in reversed(cards)]
    return trend_svg(points, title=t.gettext("Score by period"))


@portal_view(JOURNEY, "/scorecard")
async def scorecard_page(request: Request, session: SessionDep):
    """The latest scorecard, its trend and what it takes to reach the next tier."""
    user = await signed_in(request, session)
    t = translator(user)
    cards = await _cards(session, user.partner_id)
    partner = await session.get(Partner, user.partner_id)
    assert partner is not None  # its users go with it
    policy = (await repo.current_policy(session)).policy
    latest = cards[0] if cards else None
    lines: list[tuple[str, str, bool]] = []
    to_tier = None
    if latest is not None:
        found = next_tier(Tier(partner.tier), ScorecardInputs.model_validate(latest.inputs), latest.score, policy.qbr)
        if found is not None:
            lines, to_tier = requirement_lines(found, t), found.to_tier.value
    return render(
        request,
        "qbr/scorecard",
        user,
        card=latest,
        chart=_chart(cards, t),
        metrics=METRICS,
        bands=BANDS,
        tiers=TIERS,
        tier=partner.tier,
        to_tier=to_tier,
        lines=lines,
    )


@portal_view(JOURNEY, "/qbr")
async def qbrs_page(request: Request, session: SessionDep):
    """The partner's QBRs, the latest first."""
    user = await signed_in(request, session)
    stmt = select(Qbr).where(Qbr.partner_id == user.partner_id).order_by(Qbr.period.desc()).limit(40)
    qbrs = (await session.scalars(stmt)).all()
    return render(request, "qbr/qbrs", user, qbrs=qbrs, states=STATES)


async def _qbr(session, partner_id, period: str) -> Qbr:
    row = await session.get(Qbr, (partner_id, period))
    if row is None:  # another partner's QBR, or none: the same answer
        raise NotFound(f"no QBR of yours for {period}")
    return row


@portal_view(JOURNEY, "/qbr/{period}")
async def qbr_page(period: PeriodPath, request: Request, session: SessionDep):
    """One QBR: the meeting (its invite to accept), the pre-read and the action items."""
    user = await signed_in(request, session)
    row = await _qbr(session, user.partner_id, period)
    t = translator(user)
    card = await session.get(QbrScorecard, (user.partner_id, period))
    history = [c for c in await _cards(session, user.partner_id, 50) if c.period <= period][:HISTORY]
    last = shift(period, -1)
    items = (
        await session.scalars(
            select(QbrActionItem)
            .where(QbrActionItem.partner_id == user.partner_id, QbrActionItem.period.in_([period, last]))
            .order_by(QbrActionItem.period, QbrActionItem.item_no)
        )
    ).all()
    pipeline = await deal.open_pipeline(session, user.partner_id, limit=10) if card else []
    return render(
        request,
        "qbr/qbr",
        user,
        qbr=row,
        state=t.gettext(STATES.get(row.state, row.state)),
        card=card,
        chart=_chart(history, t),
        metrics=METRICS,
        bands=BANDS,
        pipeline=pipeline,
        items=[i for i in items if i.period == period],
        last_period=last,
        last_items=[i for i in items if i.period == last],
        item_states=ITEM_STATES,
        owners=OWNERS,
        may_schedule=row.state in SCHEDULING,
        zone=user.time_zone,
    )


@portal_view(JOURNEY, "/qbr/{period}/invite.ics")
async def invite(period: PeriodPath, request: Request, session: SessionDep):
    """The meeting's current invite (the same UID across reschedules): opened in a calendar, it is
    accepted there."""
    user = await signed_in(request, session)
    row = await _qbr(session, user.partner_id, period)
    if row.ics is None:
        raise NotFound(f"the {period} QBR has no meeting yet")
    return Response(
        row.ics,
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="qbr-{period}.ics"'},
    )


@portal_action(JOURNEY, "complete_action", "/qbr/{period}/action-items/{item_no}/complete")
async def complete_action(period: PeriodPath, item_no: ItemPath, ctx: PortalActionDep) -> str:
    """An action item the partner owns is done (POST /partners/{id}/qbr/{period}/action-items/{n}/complete)."""
    item = await ctx.session.get(QbrActionItem, (ctx.user.partner_id, period, item_no))
    if item is None:
        raise NotFound(f"no action item {item_no} of yours in the {period} QBR")
    service.actor_may_complete(ctx.principal, item.owner)
    await ctx.session.close()
    await journeys.run_update(
        ctx.temporal,
        JOURNEY,
        service.entity(ctx.user.partner_id, period),
        COMPLETE_ACTION,
        ActionDone(item_id=item_no, by=ctx.principal.actor),
        ActionItem,
        deadline=ctx.deadline,
        progress=f"{PREFIX}/qbr/{period}",
    )
    return ctx.t.gettext("Action item done.")


@portal_action(JOURNEY, "schedule", "/qbr/{period}/meeting")
async def propose_meeting(
    period: PeriodPath, ctx: PortalActionDep, starts_at: Line = "", duration_minutes: Line = "60"
) -> str | tuple[str, str]:
    """Propose (or move) the meeting, a time in the user's time zone (POST /partners/{id}/qbr/{period}/meeting):
    the journey refuses a time in the past or a meeting that took place; both sides get the invite."""
    t = ctx.t
    ctx.back = f"{PREFIX}/qbr/{period}"
    await _qbr(ctx.session, ctx.user.partner_id, period)
    if not re.fullmatch(r"[0-9]{1,4}", duration_minutes.strip()):
        return t.gettext("duration_minutes: a number of minutes"), "error"
    try:
        local = datetime.fromisoformat(starts_at.strip())
        when = local if local.tzinfo else local.replace(tzinfo=ZoneInfo(ctx.user.time_zone))
        body = MeetingBody.model_validate({"starts_at": when.isoformat(), "duration_minutes": int(duration_minutes)})
    except ValidationError as err:
        return error_text(err), "error"
    except (ValueError, OverflowError):
        return t.gettext("starts_at: a date and time, e.g. 2027-03-01T10:00"), "error"
    proposal = MeetingProposal(starts_at=body.starts_at, duration_minutes=body.duration_minutes, by=ctx.principal.actor)
    await ctx.session.close()
    meeting = await journeys.run_update(
        ctx.temporal,
        JOURNEY,
        service.entity(ctx.user.partner_id, period),
        SCHEDULE,
        proposal,
        Meeting,
        deadline=ctx.deadline,
        progress=f"{PREFIX}/qbr/{period}",
    )
    return t.gettext("Meeting proposed for %(when)s: the invite is on its way.", when=t.datetime(meeting.starts_at))
