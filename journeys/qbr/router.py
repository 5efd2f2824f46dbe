"""The QBR journey's API: scorecards (history, a portfolio view, CSV), targets, the cycle
(trigger, progress), a partner's QBR (meeting, invite, notes, action items) and tier decisions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys
from api.auth import Principal
from api.deps import OpsDep, PartnerDep, PrincipalDep, SessionDep, SettingsDep, StaffDep, TemporalDep, UpdateBudget
from api.openapi import TEMPORAL_503, UPDATE
from api.routemeta import route_meta
from core.settings import Settings
from domain.enums import Tier
from journeys.qbr import service
from journeys.qbr.domain import (
    COMPLETE_ACTION,
    DECIDE_TIER,
    EDIT_ACTION,
    JOURNEY,
    RECORD_NOTES,
    SCHEDULE,
    ActionDone,
    ActionEdit,
    ActionItem,
    ActionItemIn,
    Meeting,
    MeetingProposal,
    Notes,
    NotesResult,
    ReviewOutcome,
)
from journeys.qbr.models import QbrActionItem, QbrScorecard, QbrTarget, QbrTierReview
from journeys.qbr.periods import PERIOD
from journeys.qbr.schemas import (
    ActionItemEditBody,
    ActionItemOut,
    CycleBody,
    CycleOut,
    CycleStarted,
    MeetingBody,
    NotesBody,
    QbrOut,
    ScorecardOut,
    TargetBody,
    TargetOut,
    TierDecisionBody,
    TierReviewOut,
)
from journeys.qbr.scoring import Band
from store.models import Partner

router = APIRouter(tags=["qbr"])
T = TypeVar("T")
Period = Path(pattern=PERIOD, description="a quarter, e.g. 2027-Q1")


# ------------------------------------------------------------------ scorecards


@router.get("/partners/{partner_id}/scorecards", response_model=list[ScorecardOut])
async def partner_scorecards(partner: PartnerDep, session: SessionDep, limit: int = Query(20, ge=1, le=200)):
    """The partner's scorecard history, newest period first, each with its inputs and percentile."""
    return await service.partner_scorecards(session, partner, limit)


@router.get("/scorecards", response_model=list[ScorecardOut])
async def list_scorecards(
    principal: PrincipalDep,
    session: SessionDep,
    period: str = Query(pattern=PERIOD, description="a quarter, e.g. 2027-Q1"),
    tier: Tier | None = None,
    band: Band | None = None,
    cam_id: uuid.UUID | None = None,
    sort: service.SortKey = "score",
    descending: bool = True,
    limit: int = Query(500, ge=1, le=10000),
):
    """A period's scorecards (a CAM's portfolio, a partner itself), by tier, band or CAM,
    sorted by score, trend or percentile."""
    return await service.list_scorecards(
        session,
        principal,
        period=period,
        tier=tier,
        band=band,
        cam_id=cam_id,
        sort=sort,
        descending=descending,
        limit=limit,
    )


@router.get(
    "/scorecards/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the CSV"}},
)
async def export_scorecards(
    principal: PrincipalDep,
    session: SessionDep,
    period: str = Query(pattern=PERIOD, description="a quarter, e.g. 2027-Q1"),
    tier: Tier | None = None,
):
    """A period's scorecards as CSV (those the caller may see)."""
    cards = await service.list_scorecards(
        session,
        principal,
        period=period,
        tier=tier,
        band=None,
        cam_id=None,
        sort="score",
        descending=True,
        limit=100_000,
    )
    return Response(
        service.to_csv(cards),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="scorecards-{period}.csv"'},
    )


# ------------------------------------------------------------------ targets


@router.put("/partners/{partner_id}/targets/{period}", response_model=TargetOut)
async def set_target(
    partner: PartnerDep, body: TargetBody, principal: StaffDep, session: SessionDep, period: str = Period
):
    """The partner's revenue target for a quarter, in the program currency (ops or its CAM);
    without one the tier's default in the policy applies."""
    return await service.set_target(session, principal, partner, period, body.amount_minor)


@router.get("/partners/{partner_id}/targets", response_model=list[TargetOut])
async def targets(partner: PartnerDep, session: SessionDep):
    return (
        await session.scalars(
            select(QbrTarget).where(QbrTarget.partner_id == partner.id).order_by(QbrTarget.period.desc())
        )
    ).all()


# ------------------------------------------------------------------ the cycle


@router.post(
    "/qbr/cycles",
    status_code=201,
    response_model=CycleStarted,
    responses={200: {"model": CycleStarted, "description": "the period's cycle existed: nothing was started"}},
    openapi_extra=route_meta({503: TEMPORAL_503}),
)
async def start_cycle(body: CycleBody, principal: OpsDep, settings: SettingsDep, temporal: TemporalDep):
    """Run the QBR cycle of a period by hand (a backfill): one QBR per partner. A period's cycle
    runs once: a second request starts nothing (200)."""
    out = await service.start_cycle(temporal, settings.task_queue, body.period)
    if not out.started:
        return JSONResponse(status_code=200, content=out.model_dump())
    return out


@router.get(
    "/qbr/cycles/{period}",
    response_model=CycleOut,
    openapi_extra=route_meta({503: TEMPORAL_503, 504: "the cycle did not answer in time"}),
)
async def cycle_progress(principal: OpsDep, session: SessionDep, temporal: TemporalDep, period: str = Period):
    """A cycle's progress: its counters and the period's QBRs counted by state."""
    return await service.cycle(session, temporal, period)


# ------------------------------------------------------------------ a partner's QBR


@router.get("/partners/{partner_id}/qbr/{period}", response_model=QbrOut)
async def get_qbr(partner: PartnerDep, session: SessionDep, period: str = Period):
    """The partner's QBR for a period: state, meeting, notes, action items, tier review, scorecard."""
    row = await service.qbr_row(session, partner, period)
    items = await session.scalars(
        select(QbrActionItem)
        .where(QbrActionItem.partner_id == partner.id, QbrActionItem.period == period)
        .order_by(QbrActionItem.item_no)
    )
    review = await session.get(QbrTierReview, (partner.id, period))
    card = await session.get(QbrScorecard, (partner.id, period))
    cards = await service.with_percentiles(session, [card]) if card else []
    return QbrOut(
        partner_id=partner.id,
        period=period,
        state=row.state,
        meeting=service.meeting_of(row),
        notes=row.notes,
        action_items=[ActionItemOut.model_validate(i) for i in items.all()],
        review=TierReviewOut.model_validate(review) if review else None,
        scorecard=cards[0] if cards else None,
    )


@router.get(
    "/partners/{partner_id}/qbr/{period}/invite.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}, "description": "the invite"}},
)
async def invite(partner: PartnerDep, session: SessionDep, period: str = Period):
    """The meeting's current iCalendar invite (the same UID across reschedules)."""
    row = await service.qbr_row(session, partner, period)
    if row.ics is None:
        raise HTTPException(404, detail=f"the {period} QBR has no meeting yet")
    return Response(row.ics, media_type="text/calendar")


@dataclass(frozen=True)
class QbrCall:
    """A message to a partner's QBR journey: the partner (loaded and authorized), the caller, the
    period, and what a workflow update needs."""

    partner: Partner
    principal: Principal
    session: AsyncSession
    temporal: Client
    settings: Settings
    period: str

    async def item(self, item_no: int) -> QbrActionItem:
        item = await self.session.get(QbrActionItem, (self.partner.id, self.period, item_no))
        if item is None:
            raise HTTPException(404, detail=f"no action item {item_no} in the {self.period} QBR")
        return item

    async def update(self, name: str, arg: BaseModel, result_type: type[T], progress: str = "") -> T:
        """The workflow update, holding no database connection meanwhile."""
        await self.session.close()
        return await journeys.run_update(
            self.temporal,
            JOURNEY,
            service.entity(self.partner.id, self.period),
            name,
            arg,
            result_type,
            deadline=self.settings.update_deadline_seconds,
            progress=progress or f"/partners/{self.partner.id}/qbr/{self.period}",
        )


async def qbr_call(
    partner: PartnerDep,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    period: str = Period,
) -> QbrCall:
    return QbrCall(partner, principal, session, temporal, settings, period)


QbrCallDep = Annotated[QbrCall, Depends(qbr_call)]
ItemNo = Path(ge=1, le=50, description="the action item's number in its QBR")


@router.post(
    "/partners/{partner_id}/qbr/{period}/meeting",
    response_model=Meeting,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta(
        {
            409: "the QBR has no meeting (a digital review), the meeting took place, or the journey is not running",
            **UPDATE,
        },
        business_rule="the meeting must start in the future (time-dependent)",
    ),
)
async def schedule(call: QbrCallDep, body: MeetingBody):
    """Propose (or move) the meeting: the partner, its CAM or ops. Both sides get the invite."""
    await service.qbr_row(call.session, call.partner, call.period)
    by = call.principal.actor
    proposal = MeetingProposal(starts_at=body.starts_at, duration_minutes=body.duration_minutes, by=by)
    return await call.update(SCHEDULE, proposal, Meeting)


@router.post(
    "/partners/{partner_id}/qbr/{period}/notes",
    response_model=NotesResult,
    openapi_extra=route_meta(
        {
            409: "no meeting took place yet, the notes are recorded, or the journey is not running",
            **UPDATE,
        },
        business_rule="action items may not be due in the past (time-dependent)",
    ),
)
async def record_notes(call: QbrCallDep, body: NotesBody):
    """After the meeting, the CAM (or ops) records the notes and the action items (owner, due date)."""
    service.check_staff(call.principal, "notes")
    await service.qbr_row(call.session, call.partner, call.period)
    notes = Notes(
        notes=body.notes,
        by=call.principal.actor,
        action_items=[ActionItemIn(title=i.title, owner=i.owner, due=i.due) for i in body.action_items],
    )
    return await call.update(RECORD_NOTES, notes, NotesResult)


@router.get("/partners/{partner_id}/action-items", response_model=list[ActionItemOut])
async def action_items(partner: PartnerDep, session: SessionDep, open_only: bool = Query(False, alias="open")):
    """The partner's action items of every QBR (`open=true`: those neither done nor dropped)."""
    stmt = select(QbrActionItem).where(QbrActionItem.partner_id == partner.id)
    if open_only:
        stmt = stmt.where(QbrActionItem.done_at.is_(None), QbrActionItem.cancelled_at.is_(None))
    return (await session.scalars(stmt.order_by(QbrActionItem.due, QbrActionItem.item_no))).all()


@router.post(
    "/partners/{partner_id}/qbr/{period}/action-items/{item_no}/complete",
    response_model=ActionItem,
    openapi_extra=route_meta(
        {
            409: "the action item is already done, or the journey is not running",
            **UPDATE,
        }
    ),
)
async def complete_action(call: QbrCallDep, item_no: int = ItemNo):
    """An action item is done (its owner side, the CAM or ops); the journey stops chasing it."""
    service.actor_may_complete(call.principal, (await call.item(item_no)).owner)
    return await call.update(COMPLETE_ACTION, ActionDone(item_id=item_no, by=call.principal.actor), ActionItem)


@router.patch(
    "/partners/{partner_id}/qbr/{period}/action-items/{item_no}",
    response_model=ActionItem,
    openapi_extra=route_meta(
        {
            409: "the action item is closed (done or dropped), or the journey is not running",
            **UPDATE,
        },
        business_rule="an action item may not be due in the past (time-dependent)",
    ),
)
async def edit_action(call: QbrCallDep, body: ActionItemEditBody, item_no: int = ItemNo):
    """Change an open action item (title, owner, due date; the CAM or ops): its reminders start again."""
    service.check_staff(call.principal, "changing action items")
    await call.item(item_no)
    edit = ActionEdit(item_id=item_no, title=body.title, owner=body.owner, due=body.due, by=call.principal.actor)
    return await call.update(EDIT_ACTION, edit, ActionItem)


@router.delete(
    "/partners/{partner_id}/qbr/{period}/action-items/{item_no}",
    response_model=ActionItem,
    openapi_extra=route_meta(
        {
            409: "the action item is closed (done or dropped), or the journey is not running",
            **UPDATE,
        }
    ),
)
async def drop_action(call: QbrCallDep, item_no: int = ItemNo):
    """Drop an open action item (the CAM or ops): it is kept, marked dropped, and no longer chased."""
    service.check_staff(call.principal, "dropping action items")
    await call.item(item_no)
    return await call.update(EDIT_ACTION, ActionEdit(item_id=item_no, cancel=True, by=call.principal.actor), ActionItem)


@router.get("/partners/{partner_id}/tier-reviews", response_model=list[TierReviewOut])
async def tier_reviews(partner: PartnerDep, session: SessionDep):
    """The partner's tier reviews: recommendation, reasons, decision, remediation."""
    return (
        await session.scalars(
            select(QbrTierReview).where(QbrTierReview.partner_id == partner.id).order_by(QbrTierReview.period.desc())
        )
    ).all()


@router.post(
    "/partners/{partner_id}/qbr/{period}/tier-decision",
    response_model=ReviewOutcome,
    openapi_extra=route_meta(
        {
            409: "the tier review is not waiting for a decision",
            **UPDATE,
        },
        business_rule=(
            "an override needs a reason; a partner moved into a "
            "tier that has a CAM needs one, and cam_id must name a CAM"
        ),
    ),
)
async def decide_tier(call: QbrCallDep, body: TierDecisionBody):
    """The CAM (ops for tiers without one) approves the tier review's recommendation or overrides
    it with a reason; an approved change takes the coverage-change path, a demotion first the
    remediation period."""
    decision = await service.decision(call.session, call.principal, call.partner, call.period, body)
    return await call.update(DECIDE_TIER, decision, ReviewOutcome, f"/partners/{call.partner.id}/tier-reviews")
