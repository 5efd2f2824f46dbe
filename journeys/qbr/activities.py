"""Activities of the quarterly business review journey: the scorecard snapshot (read from the
database, scored by the pure rules of journeys/qbr/domain.py, stored with its inputs), the QBR's state,
meeting (with its iCalendar invite), pre-read package, notes and action items, the tier review,
the tier change (the coverage-change path) and the cycle's pages of partners."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from icalendar import Calendar, Event, vCalAddress, vText
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.common import resolve_recipients, write_outbox
from core.journey import ScorecardInputsReader, ScorecardQuery
from domain.enums import Tier
from domain.journeys import Coverage, NotifyInput, StepResult
from domain.policy import ProgramPolicy
from journeys.deal import contract as deal
from journeys.qbr import domain as qbr
from journeys.qbr.domain import (
    JOURNEY,
    ActionDoneInput,
    ActionEditInput,
    ChangeTierInput,
    ChangeTierResult,
    CycleInput,
    ListPartnersInput,
    MeetingInput,
    NotesInput,
    PartnerPage,
    PreReadInput,
    QbrActivity,
    QbrStateInput,
    ReviewInput,
    Scorecard,
    ScorecardInputs,
    ScorecardRequest,
    StartedQbrs,
    StartQbrsInput,
    cycle_id,
    qbr_id,
)
from journeys.qbr.models import Qbr, QbrActionItem, QbrScorecard, QbrTarget, QbrTierReview
from store import locks, repo
from store.models import Cam, JourneyRecord, Partner


def _qbr_key(partner_id: str, period: str) -> str:
    return f"{partner_id}-{period}"


def build_ics(
    meeting: qbr.Meeting, *, summary: str, organizer: str, attendees: list[str], description: str, cancel: bool = False
) -> str:
    """An RFC 5545 invite: one VEVENT whose UID is the QBR's (stable), with SEQUENCE counting
    reschedules, so a calendar updates the same event."""
    cal = Calendar()
    cal.add("prodid", "-//CAM Lights//QBR//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", meeting.proposed_at.astimezone(UTC))
    event.add("dtstart", meeting.starts_at.astimezone(UTC))
    event.add("dtend", meeting.ends_at.astimezone(UTC))
    event.add("summary", summary)
    event.add("description", description)
    org = vCalAddress(f"mailto:{organizer}")
    org.params["cn"] = vText("CAM Lights")
    event["organizer"] = org
    for address in attendees:
        att = vCalAddress(f"mailto:{address}")
        att.params["role"] = vText("REQ-PARTICIPANT")
        att.params["rsvp"] = vText("TRUE")
        event.add("attendee", att, encode=False)
    cal.add_component(event)
    return cal.to_ical().decode()


class QbrActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        ops_email: str,
        following: tuple[str, ...] = (),
        scorecard_inputs: tuple[ScorecardInputsReader, ...] = (),
    ):
        """`following`: the journeys that follow coverage changes; `scorecard_inputs`: every
        journey's reader of its scorecard figures (both from the registry)."""
        self.sessionmaker = sessionmaker
        self.ops_email = ops_email
        self.following = following
        self.scorecard_inputs = scorecard_inputs

    # ------------------------------------------------------------------ the scorecard

    @activity.defn(name=QbrActivity.COMPUTE_SCORECARD)
    async def compute_scorecard(self, inp: ScorecardRequest) -> Scorecard:
        """The partner's scorecard for the period, stored once as a snapshot with its inputs (a
        second cycle for the period returns the stored one). With a window (a remediation
        recheck) it is computed over that window, the target pro-rated, and not stored."""
        recheck = inp.window_start is not None and inp.window_end is not None
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            if not recheck:
                stored = await session.get(QbrScorecard, (pid, inp.period))
                if stored is not None:
                    return await _stored_card(session, stored)
            snap = await repo.policy_version(session, inp.policy_version)
            if snap is None:
                raise ApplicationError(
                    f"policy version {inp.policy_version} does not exist", type="PolicyNotFound", non_retryable=True
                )
            policy = snap.policy
            partner = await session.get(Partner, pid)
            if partner is None:
                raise ApplicationError(f"partner {pid} not found", type="PartnerNotFound", non_retryable=True)
            inputs = await read_inputs(session, partner, inp, policy, self.scorecard_inputs)
            previous = await _previous_scores(session, pid, inp.period)
            card = qbr.scorecard(inp.partner_id, inp.period, inp.tier, inputs, policy.qbr, [s for _, s in previous])
            card.history = [*previous, (inp.period, card.score)]
            if recheck:
                return card
            await session.execute(
                insert(QbrScorecard)
                .values(
                    partner_id=pid,
                    period=inp.period,
                    tier=inp.tier.value,
                    cam_id=partner.cam_id,
                    score=card.score,
                    band=card.band.value,
                    trend=card.trend,
                    metrics=[m.model_dump(mode="json") for m in card.metrics],
                    inputs=inputs.model_dump(mode="json"),
                    actions=card.actions,
                    review=card.review.model_dump(mode="json") if card.review else None,
                    policy_version=inp.policy_version,
                )
                .on_conflict_do_nothing()
            )
            await session.execute(
                insert(Qbr)
                .values(partner_id=pid, period=inp.period, state=qbr.QbrState.preparing.value, meeting_sequence=0)
                .on_conflict_do_nothing()
            )
            await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor="system",
                action="qbr.scorecard",
                partner_id=pid,
                journey=JOURNEY,
                detail={"period": inp.period, "score": card.score, "band": card.band.value},
            )
            await repo.set_journey_state(
                session, pid, JOURNEY, _qbr_key(inp.partner_id, inp.period), qbr.QbrState.preparing.value
            )
        return card

    # ------------------------------------------------------------------ the QBR

    @activity.defn(name=QbrActivity.RECORD_STATE)
    async def record_state(self, inp: QbrStateInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action=f"qbr.{inp.state.value}",
                partner_id=pid,
                journey=JOURNEY,
                detail={"period": inp.period},
                state=(_qbr_key(inp.partner_id, inp.period), inp.state.value),
            ):
                return StepResult(applied=False)
            await session.execute(
                update(Qbr)
                .where(Qbr.partner_id == pid, Qbr.period == inp.period)
                .values(state=inp.state.value, updated_at=func.now())
            )
        return StepResult(applied=True)

    @activity.defn(name=QbrActivity.RECORD_MEETING)
    async def record_meeting(self, inp: MeetingInput) -> StepResult:
        """The meeting time, its invite (.ics, the same UID at every reschedule) and the invite
        emails to the CAM and the partner in the outbox, in one transaction."""
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            partner = await _partner(session, pid)
            recipients = await resolve_recipients(session, inp.partner_id, ["cam", "partner"], self.ops_email)
            cam = await session.get(Cam, partner.cam_id) if partner.cam_id else None
            m = inp.meeting
            ics = build_ics(
                m,
                summary=f"QBR {inp.period}: {partner.name}",
                organizer=cam.email if cam else self.ops_email,
                attendees=[a for _, a in recipients],
                description=f"Quarterly business review of {partner.name} for {inp.period}. "
                "The pre-read package follows before the meeting.",
            )
            context = {
                "partner_name": partner.name,
                "period": inp.period,
                "starts_at": f"{m.starts_at:%Y-%m-%d %H:%M} UTC",
                "sequence": m.sequence,
                "by": m.by,
                "attachments": [
                    {"filename": "qbr.ics", "content_type": "text/calendar; method=REQUEST", "content": ics}
                ],
            }
            if not await _queue(session, inp.idempotency_key, inp.partner_id, "invite", context, recipients):
                return StepResult(applied=False)
            await session.execute(
                update(Qbr)
                .where(Qbr.partner_id == pid, Qbr.period == inp.period)
                .values(
                    meeting_uid=m.uid,
                    meeting_sequence=m.sequence,
                    starts_at=m.starts_at,
                    ends_at=m.ends_at,
                    scheduled_by=m.by,
                    ics=ics,
                    updated_at=func.now(),
                )
            )
        return StepResult(applied=True)

    @activity.defn(name=QbrActivity.QUEUE_PRE_READ)
    async def queue_pre_read(self, inp: PreReadInput) -> StepResult:
        """The pre-read package in the outbox: the scorecard, the trend chart (inline SVG), the
        open pipeline and last quarter's action items with their status."""
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            partner = await _partner(session, pid)
            stored = await session.get(QbrScorecard, (pid, inp.period))
            if stored is None:
                raise ApplicationError(f"no scorecard for {pid} {inp.period}", type="NoScorecard", non_retryable=True)
            card = await _stored_card(session, stored)
            deals = await deal.open_pipeline(session, pid, limit=10)
            last = qbr.shift(inp.period, -1)
            items = await _items(session, pid, last)
            meeting = await session.get(Qbr, (pid, inp.period))
            context = {
                "partner_name": partner.name,
                "period": inp.period,
                "score": card.score,
                "band": card.band.value,
                "trend": card.trend,
                "metrics": [m.model_dump(mode="json") for m in card.metrics],
                "trend_svg": qbr.trend_svg(card.history),
                "actions": card.actions,
                "starts_at": f"{meeting.starts_at:%Y-%m-%d %H:%M} UTC" if meeting and meeting.starts_at else "",
                "pipeline": [
                    {
                        "customer": d.customer_name,
                        "stage": d.stage,
                        "state": d.state,
                        "amount": qbr.money(d.amount_minor, d.currency),
                    }
                    for d in deals
                ],
                "last_period": last,
                "last_items": [
                    {
                        "title": i.title,
                        "owner": i.owner,
                        "due": i.due.isoformat(),
                        "status": "done" if i.done_at else ("dropped" if i.cancelled_at else "open"),
                    }
                    for i in items
                ],
            }
            recipients = await resolve_recipients(session, inp.partner_id, inp.recipients, self.ops_email)
            queued = await _queue(session, inp.idempotency_key, inp.partner_id, "pre_read", context, recipients)
        return StepResult(applied=queued > 0)

    @activity.defn(name=QbrActivity.RECORD_NOTES)
    async def record_notes(self, inp: NotesInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action="qbr.notes_recorded",
                partner_id=pid,
                journey=JOURNEY,
                detail={"period": inp.period, "action_items": len(inp.action_items)},
            ):
                return StepResult(applied=False)
            await session.execute(
                update(Qbr)
                .where(Qbr.partner_id == pid, Qbr.period == inp.period)
                .values(notes=inp.notes, notes_by=inp.by, updated_at=func.now())
            )
            for item in inp.action_items:
                await session.execute(
                    insert(QbrActionItem)
                    .values(
                        partner_id=pid,
                        period=inp.period,
                        item_no=item.id,
                        title=item.title,
                        owner=item.owner.value,
                        due=item.due,
                    )
                    .on_conflict_do_nothing()
                )
        return StepResult(applied=True)

    @activity.defn(name=QbrActivity.COMPLETE_ACTION)
    async def complete_action(self, inp: ActionDoneInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action="qbr.action_done",
                partner_id=pid,
                journey=JOURNEY,
                detail={"period": inp.period, "item": inp.item_id},
            ):
                return StepResult(applied=False)
            await session.execute(
                update(QbrActionItem)
                .where(
                    QbrActionItem.partner_id == pid,
                    QbrActionItem.period == inp.period,
                    QbrActionItem.item_no == inp.item_id,
                    QbrActionItem.done_at.is_(None),
                    QbrActionItem.cancelled_at.is_(None),
                )
                .values(done_at=inp.at, done_by=inp.by)
            )
        return StepResult(applied=True)

    @activity.defn(name=QbrActivity.EDIT_ACTION)
    async def edit_action(self, inp: ActionEditInput) -> StepResult:
        """An open action item changed (title, owner, due date) or dropped."""
        item = inp.item
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action="qbr.action_dropped" if item.cancelled_at else "qbr.action_changed",
                partner_id=pid,
                journey=JOURNEY,
                detail={
                    "period": inp.period,
                    "item": item.id,
                    "title": item.title,
                    "owner": item.owner.value,
                    "due": item.due.isoformat(),
                },
            ):
                return StepResult(applied=False)
            await session.execute(
                update(QbrActionItem)
                .where(
                    QbrActionItem.partner_id == pid,
                    QbrActionItem.period == inp.period,
                    QbrActionItem.item_no == item.id,
                    QbrActionItem.done_at.is_(None),
                )
                .values(title=item.title, owner=item.owner.value, due=item.due, cancelled_at=item.cancelled_at)
            )
        return StepResult(applied=True)

    # ------------------------------------------------------------------ the tier review

    @activity.defn(name=QbrActivity.RECORD_REVIEW)
    async def record_review(self, inp: ReviewInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            partner = await _partner(session, pid)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.decided_by or "system",
                action=f"qbr.review_{inp.state.value}",
                partner_id=pid,
                journey=JOURNEY,
                detail={
                    "period": inp.period,
                    "recommendation": inp.recommendation.value,
                    "reasons": inp.reasons,
                    "decided": inp.decided.value if inp.decided else None,
                    "to_tier": inp.to_tier.value if inp.to_tier else None,
                    "reason": inp.reason,
                },
            ):
                return StepResult(applied=False)
            values = {
                "state": inp.state.value,
                "recommendation": inp.recommendation.value,
                "reasons": inp.reasons,
                "decided": inp.decided.value if inp.decided else None,
                "to_tier": inp.to_tier.value if inp.to_tier else None,
                "decided_by": inp.decided_by,
                "reason": inp.reason,
                "remediation_ends": inp.remediation_ends,
                "updated_at": func.now(),
            }
            await session.execute(
                insert(QbrTierReview)
                .values(partner_id=pid, period=inp.period, from_tier=partner.tier, **values)
                .on_conflict_do_update(index_elements=["partner_id", "period"], set_=values)
            )
        return StepResult(applied=True)

    @activity.defn(name=QbrActivity.CHANGE_TIER)
    async def change_tier(self, inp: ChangeTierInput) -> ChangeTierResult:
        """The partner's new tier through the coverage-change path: the partner row and the
        `partner.coverage_changed` audit row in one transaction (once per key), then the
        journeys that follow coverage are returned for the workflow to tell (CHANGE_COVERAGE)."""
        async with self.sessionmaker() as session, session.begin():
            pid = uuid.UUID(inp.partner_id)
            await locks.lock(session, f"partner:{pid}")
            partner = await _partner(session, pid)
            policy = (await repo.current_policy(session)).policy
            cam_id = uuid.UUID(inp.cam_id) if inp.cam_id else (partner.cam_id if inp.keep_cam else None)
            if inp.tier == Tier.registered:
                cam_id = None
            if policy.tiers[inp.tier].has_cam and cam_id is None:
                raise ApplicationError(
                    f"a {inp.tier.value} partner needs a CAM: none given", type="NeedsCam", non_retryable=True
                )
            before = Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None)
            after = Coverage(tier=inp.tier, cam_id=str(cam_id) if cam_id else None)
            if await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action="partner.coverage_changed",
                partner_id=pid,
                detail={
                    "from": before.model_dump(mode="json"),
                    "to": after.model_dump(mode="json"),
                    "reason": inp.reason,
                    "by_journey": JOURNEY,
                },
            ):
                partner.tier, partner.cam_id = inp.tier.value, cam_id
                if after != before:  # numbered; the journeys are told by this workflow (durably)
                    partner.coverage_version += 1
                    await session.execute(
                        update(JourneyRecord)
                        .where(JourneyRecord.partner_id == pid, JourneyRecord.journey.in_(self.following))
                        .values(coverage_version=partner.coverage_version)
                    )
            coverage = Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None)
            wids = (
                await session.scalars(
                    select(JourneyRecord.workflow_id)
                    .where(JourneyRecord.partner_id == pid, JourneyRecord.journey.in_(self.following))
                    .where(JourneyRecord.workflow_id != activity.info().workflow_id)  # not the caller itself
                    .order_by(JourneyRecord.workflow_id)
                )
            ).all()
        return ChangeTierResult(coverage=coverage, workflow_ids=list(wids))

    # ------------------------------------------------------------------ the cycle

    @activity.defn(name=QbrActivity.LIST_PARTNERS)
    async def list_partners(self, inp: ListPartnersInput) -> PartnerPage:
        """One page of the program's partners, by id after the cursor."""
        async with self.sessionmaker() as session:
            stmt = select(Partner).order_by(Partner.id).limit(inp.limit)
            if inp.after:
                stmt = stmt.where(Partner.id > uuid.UUID(inp.after))
            rows = (await session.scalars(stmt)).all()
        return PartnerPage(
            ids=[str(p.id) for p in rows],
            names=[p.name for p in rows],
            coverage=[Coverage(tier=p.tier, cam_id=str(p.cam_id) if p.cam_id else None) for p in rows],
        )

    @activity.defn(name=QbrActivity.START_QBRS)
    async def start_qbrs(self, inp: StartQbrsInput) -> StartedQbrs:
        """Start each partner's QBR for the cycle, as a workflow of its own, at most once."""
        out = []
        for q in inp.qbrs:
            out.append(
                await _start_once(
                    activity.client(),
                    qbr.QBR_WORKFLOW,
                    q,
                    qbr_id(q.partner_id, q.period),
                    f"QBR {q.period}: {q.partner_name}",
                )
            )
        return StartedQbrs(started=out)

    @activity.defn(name=QbrActivity.START_CYCLE)
    async def start_cycle(self, inp: CycleInput) -> bool:
        """The scheduled run's: start the period's cycle, at most once; False if it existed."""
        if inp.period is None:
            raise ApplicationError("the cycle to start names no period", type="NoPeriod", non_retryable=True)
        return await _start_once(
            activity.client(), qbr.CYCLE_WORKFLOW, inp, cycle_id(inp.period), f"QBR cycle {inp.period}"
        )


STARTED_BY = "started_by"  # the memo of a workflow started by an activity: which one


async def _start_once(client: Client, workflow_type: str, arg: Any, workflow_id: str, summary: str) -> bool:
    """Start `workflow_id` on the activity's own task queue (never a second run of it): True if this
    activity started it, in this attempt or an earlier one (a retry after the start went through:
    the run's memo names this activity), False if it existed already."""
    info = activity.info()
    me = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    try:
        await client.start_workflow(
            workflow_type,
            arg,
            id=workflow_id,
            task_queue=info.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={STARTED_BY: me},
            static_summary=summary,
        )
    except WorkflowAlreadyStartedError:
        memo = await (await client.get_workflow_handle(workflow_id).describe()).memo()
        return memo.get(STARTED_BY) == me
    return True


# ---------------------------------------------------------------------- reading the figures


async def _queue(
    session: AsyncSession, key: str, partner_id: str, template: str, context: dict, recipients: list[tuple[str, str]]
) -> int:
    """An email built here (an invite, a pre-read) in the outbox, with its audit row, once per key."""
    notify = NotifyInput(
        idempotency_key=key,
        partner_id=partner_id,
        journey=JOURNEY,
        template=template,
        recipients=[],
        context=context,
        audit_action=f"qbr.{template}_sent",
    )
    return await write_outbox(session, notify, [(role, address, {}) for role, address in recipients])


async def _partner(session: AsyncSession, pid: uuid.UUID) -> Partner:
    partner = await session.get(Partner, pid)
    if partner is None:
        raise ApplicationError(f"partner {pid} not found", type="PartnerNotFound", non_retryable=True)
    return partner


async def _items(session: AsyncSession, pid: uuid.UUID, period: str) -> list[QbrActionItem]:
    return list(
        (
            await session.scalars(
                select(QbrActionItem)
                .where(QbrActionItem.partner_id == pid, QbrActionItem.period == period)
                .order_by(QbrActionItem.item_no)
            )
        ).all()
    )


async def _previous_scores(session: AsyncSession, pid: uuid.UUID, period: str) -> list[tuple[str, float]]:
    periods = [qbr.shift(period, -n) for n in range(4, 0, -1)]
    rows = (
        await session.execute(
            select(QbrScorecard.period, QbrScorecard.score)
            .where(QbrScorecard.partner_id == pid, QbrScorecard.period.in_(periods))
            .order_by(QbrScorecard.period)
        )
    ).all()
    return [(p, s) for p, s in rows]


async def _stored_card(session: AsyncSession, row: QbrScorecard) -> Scorecard:
    previous = await _previous_scores(session, row.partner_id, row.period)
    return Scorecard(
        partner_id=str(row.partner_id),
        period=row.period,
        tier=Tier(row.tier),
        metrics=row.metrics,
        score=row.score,
        band=row.band,
        trend=row.trend,
        history=[*previous, (row.period, row.score)],
        actions=row.actions,
        review=row.review,
    )


async def read_inputs(
    session: AsyncSession,
    partner: Partner,
    req: ScorecardRequest,
    policy: ProgramPolicy,
    readers: tuple[ScorecardInputsReader, ...],
) -> ScorecardInputs:
    """Every figure of the scorecard from the database, for the period (or a recheck's window):
    QBR's own (the target, overdue action items) and each installed journey's, from the `readers`
    its manifest gives (a journey not installed leaves its figures at their defaults)."""
    pid, currency, rules = partner.id, policy.deal.currency, policy.qbr.tiers[req.tier]
    p_start, p_end = qbr.period_bounds(req.period, policy.qbr.time_zone)
    start, end = req.window_start or p_start, req.window_end or p_end
    target = await session.get(QbrTarget, (pid, req.period))
    if target is not None and target.currency == currency:
        target_minor, source = target.amount_minor, "partner"
    else:
        target_minor, source = rules.target_minor, "tier_default"
    if req.window_start is not None:  # a recheck: the quarterly target pro-rated to its window
        target_minor = round(target_minor * ((end - start) / (p_end - p_start)))
        source += "_prorated"
    figures: dict[str, Any] = {}
    query = ScorecardQuery(partner_id=pid, period=req.period, start=start, end=end, policy=policy)
    for read in readers:  # each journey's own figures (its manifest's `scorecard_inputs`)
        figures |= await read(session, query)
    overdue_actions = await session.scalar(
        select(func.count()).where(
            QbrActionItem.partner_id == pid,
            QbrActionItem.done_at.is_(None),
            QbrActionItem.cancelled_at.is_(None),
            QbrActionItem.due < end.date(),
        )
    )
    return ScorecardInputs(
        currency=currency,
        window_start=start,
        window_end=end,
        target_minor=target_minor,
        target_source=source,
        certifications_required=rules.certifications_required,
        overdue_actions=overdue_actions or 0,
        **figures,
    )
