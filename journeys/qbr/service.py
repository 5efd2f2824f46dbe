"""The QBR journey's service: scorecard views (with the percentile within the tier) and their
CSV export, targets, the cycle (start by hand, progress), and the messages to a partner's QBR
(meeting, notes, action items, tier decision: workflow updates)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import journeys
from api.auth import Principal, scope_to_principal
from domain.enums import Role, Tier
from domain.errors import Conflict, DomainError, Invalid, NotFound, Refused
from domain.journeys import PROGRESS
from journeys.qbr.domain import (
    CYCLE_WORKFLOW,
    JOURNEY,
    TIER_ORDER,
    Band,
    CycleInput,
    CycleProgress,
    Meeting,
    TierDecision,
    cycle_id,
    percentiles,
)
from journeys.qbr.models import Qbr, QbrScorecard, QbrTarget, QbrTierReview
from journeys.qbr.schemas import CycleOut, CycleStarted, ScorecardOut, TierDecisionBody
from store import repo
from store.models import Cam, JourneyRecord, Partner

SortKey = Literal["score", "trend", "percentile"]


def entity(partner_id: uuid.UUID, period: str) -> str:
    """The entity id of a partner's QBR: its workflow is `qbr-{partner_id}-{period}`."""
    return f"{partner_id}-{period}"


# ------------------------------------------------------------------ scorecards


async def _percentiles(session: AsyncSession, period: str, tiers: set[str]) -> dict[uuid.UUID, float]:
    """Each partner's percentile within its tier, over every scorecard of the period."""
    rows = (
        await session.execute(
            select(QbrScorecard.partner_id, QbrScorecard.tier, QbrScorecard.score).where(
                QbrScorecard.period == period, QbrScorecard.tier.in_(tiers)
            )
        )
    ).all()
    out: dict[uuid.UUID, float] = {}
    for tier in tiers:
        group = [(pid, score) for pid, t, score in rows if t == tier]
        for (pid, _), pct in zip(group, percentiles([s for _, s in group]), strict=True):
            out[pid] = pct
    return out


async def with_percentiles(session: AsyncSession, rows: list[QbrScorecard]) -> list[ScorecardOut]:
    by_period: dict[str, set[str]] = {}
    for row in rows:
        by_period.setdefault(row.period, set()).add(row.tier)
    pct: dict[tuple[uuid.UUID, str], float] = {}
    for period, tiers in by_period.items():
        for pid, p in (await _percentiles(session, period, tiers)).items():
            pct[(pid, period)] = p
    return [
        ScorecardOut.model_validate(row).model_copy(update={"percentile": pct.get((row.partner_id, row.period))})
        for row in rows
    ]


async def partner_scorecards(session: AsyncSession, partner: Partner, limit: int) -> list[ScorecardOut]:
    rows = (
        await session.scalars(
            select(QbrScorecard)
            .where(QbrScorecard.partner_id == partner.id)
            .order_by(QbrScorecard.period.desc())
            .limit(limit)
        )
    ).all()
    return await with_percentiles(session, list(rows))


async def list_scorecards(
    session: AsyncSession,
    principal: Principal,
    *,
    period: str,
    tier: Tier | None,
    band: Band | None,
    cam_id: uuid.UUID | None,
    sort: SortKey,
    descending: bool,
    limit: int,
) -> list[ScorecardOut]:
    """A period's scorecards the caller may see (a CAM its portfolio), filtered and sorted."""
    stmt = select(QbrScorecard).join(Partner, Partner.id == QbrScorecard.partner_id)
    stmt = scope_to_principal(stmt, principal, QbrScorecard.partner_id).where(QbrScorecard.period == period)
    if tier:
        stmt = stmt.where(QbrScorecard.tier == tier.value)
    if band:
        stmt = stmt.where(QbrScorecard.band == band.value)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    out = await with_percentiles(session, list((await session.scalars(stmt)).all()))

    def key(card: ScorecardOut) -> tuple[bool, float, str]:
        value = getattr(card, sort)
        missing = value is None  # cards without a trend (a first period) sort last either way
        return (missing, -(value or 0.0) if descending else (value or 0.0), str(card.partner_id))

    return sorted(out, key=key)[:limit]


def to_csv(cards: list[ScorecardOut]) -> str:
    """A period's scorecards as CSV: one row per partner, one column per metric's score."""
    metrics = sorted({m["metric"] for c in cards for m in c.metrics})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["partner_id", "period", "tier", "cam_id", "score", "band", "trend", "percentile", *metrics])
    for c in cards:
        scores = {m["metric"]: m["score"] for m in c.metrics}
        writer.writerow(
            [
                c.partner_id,
                c.period,
                c.tier.value,
                c.cam_id or "",
                c.score,
                c.band.value,
                "" if c.trend is None else c.trend,
                "" if c.percentile is None else c.percentile,
                *["" if scores.get(m) is None else scores[m] for m in metrics],
            ]
        )
    return buf.getvalue()


# ------------------------------------------------------------------ targets


async def set_target(
    session: AsyncSession, principal: Principal, partner: Partner, period: str, amount_minor: int
) -> QbrTarget:
    """The partner's target for a period, in the program currency (ops or its CAM)."""
    currency = (await repo.current_policy(session)).policy.deal.currency
    values = {"amount_minor": amount_minor, "currency": currency, "set_by": principal.actor, "updated_at": func.now()}
    await session.execute(
        insert(QbrTarget)
        .values(partner_id=partner.id, period=period, **values)
        .on_conflict_do_update(index_elements=["partner_id", "period"], set_=values)
    )
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="qbr.target_set",
        partner_id=partner.id,
        journey=JOURNEY,
        detail={"period": period, "amount_minor": amount_minor, "currency": currency},
    )
    await session.commit()
    target = await session.get(QbrTarget, (partner.id, period), populate_existing=True)
    assert target is not None
    return target


# ------------------------------------------------------------------ the cycle


async def start_cycle(client: Client, task_queue: str, period: str) -> CycleStarted:
    """Start the period's cycle (a backfill by hand); an existing one (running or done) is left
    alone and nothing is started twice."""
    wid = cycle_id(period)
    try:
        await client.start_workflow(
            CYCLE_WORKFLOW,
            CycleInput(period=period),
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"QBR cycle {period} (by hand)",
        )
    except WorkflowAlreadyStartedError:
        return CycleStarted(period=period, workflow_id=wid, started=False)
    return CycleStarted(period=period, workflow_id=wid, started=True)


async def cycle(session: AsyncSession, client: Client, period: str) -> CycleOut:
    """The cycle's own counters (a query) and the period's QBRs counted by state (read model)."""
    rows = (
        await session.execute(
            select(JourneyRecord.state, func.count())
            .where(JourneyRecord.journey == JOURNEY, JourneyRecord.workflow_id.like(f"qbr-%-{period}"))
            .group_by(JourneyRecord.state)
        )
    ).all()
    await session.close()
    by_state = {state: n for state, n in rows}
    wid = cycle_id(period)
    handle = client.get_workflow_handle(wid)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if not by_state:
            raise NotFound(f"no QBR cycle for {period}") from err
        return CycleOut(period=period, workflow_id=wid, status="NONE", by_state=by_state)
    status = desc.status.name if desc.status else "UNKNOWN"
    progress: dict = {}
    if desc.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        try:
            progress = (await journeys.query(client, "qbr-cycle", period, PROGRESS, CycleProgress)).model_dump(
                exclude={"period", "done"}
            )
        except (DomainError, WorkflowQueryFailedError, RPCError):  # no answer: the counts by state still say it
            progress = {}
    return CycleOut(period=period, workflow_id=wid, status=status, by_state=by_state, **progress)


# ------------------------------------------------------------------ a partner's QBR


async def qbr_row(session: AsyncSession, partner: Partner, period: str) -> Qbr:
    row = await session.get(Qbr, (partner.id, period))
    if row is None:
        raise NotFound(f"partner {partner.id} has no QBR for {period}")
    return row


def meeting_of(row: Qbr) -> Meeting | None:
    if row.meeting_uid is None or row.starts_at is None or row.ends_at is None:
        return None
    return Meeting(
        uid=row.meeting_uid,
        sequence=row.meeting_sequence,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        by=row.scheduled_by or "",
        proposed_at=row.updated_at,
    )


def check_staff(principal: Principal, what: str) -> None:
    """Notes and tier decisions: the partner's CAM or ops (the partner itself may not)."""
    if principal.role == Role.partner:
        raise Refused(f"{what}: the partner's CAM or ops decides; your key has the role partner")


async def decision(
    session: AsyncSession, principal: Principal, partner: Partner, period: str, body: TierDecisionBody
) -> TierDecision:
    """The decision for the journey, once what only the database knows is checked: a review is
    pending, and a partner moved into a tier that needs a CAM has one."""
    check_staff(principal, "tier decisions")
    if principal.role != Role.ops and body.cam_id is not None and body.cam_id != partner.cam_id:
        raise Refused("cam_id: only ops change a partner's CAM (PATCH /partners or an ops tier decision)")
    review = await session.get(QbrTierReview, (partner.id, period))
    if review is None:
        raise NotFound(f"partner {partner.id} has no tier review for {period}")
    if review.state != "pending":
        raise Conflict(f"the {period} tier review is not waiting for a decision ({review.state})")
    target = Tier(review.to_tier) if body.approve and review.to_tier else body.to_tier
    if not body.approve and not body.reason.strip():
        raise Invalid("reason: an override needs a reason")
    if target is not None and TIER_ORDER.index(target) > TIER_ORDER.index(Tier(partner.tier)):
        policy = (await repo.current_policy(session)).policy
        if policy.tiers[target].has_cam and body.cam_id is None and partner.cam_id is None:
            raise Invalid(f"cam_id: a {target.value} partner needs a CAM")
    if body.cam_id is not None and await session.get(Cam, body.cam_id) is None:
        raise Invalid(f"cam_id: no CAM with id {body.cam_id}")
    return TierDecision(
        approve=body.approve,
        to_tier=body.to_tier,
        reason=body.reason,
        cam_id=str(body.cam_id) if body.cam_id else None,
        by=principal.actor,
    )


def actor_may_complete(principal: Principal, owner: str) -> None:
    """An action item is completed by its owner side, the CAM or ops."""
    if principal.role == Role.partner and owner != "partner":
        raise Refused("this action item is the CAM's: the partner may not complete it")
