"""Quarterly business reviews: each partner's `qbr-{partner_id}-{period}` (the cycle that starts
them, `qbr-cycle-{period}`, is in cycle.py).

A partner's QBR computes its scorecard snapshot, then by tier and cadence: a CAM-led QBR
(meeting time proposed by update, iCalendar invite, pre-read package before the meeting, notes
and action items chased with reminders and escalations) or the automated scorecard with the
recommended actions; and, at the policy's review cadence, the tier review (promote / hold /
demote), decided by the CAM (ops without one); an approved demotion first runs the remediation
period, then the rules are checked again over it. Tier changes take the coverage-change path.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import actors
    from domain.enums import Tier
    from domain.journeys import (
        CHANGE_COVERAGE,
        PROGRESS,
        Coverage,
        Refusal,
        StepResult,
        shifted,
    )
    from domain.policy import ProgramPolicy
    from journeys.qbr.domain import (
        COMPLETE_ACTION,
        DECIDE_TIER,
        EDIT_ACTION,
        JOURNEY,
        LEGACY_ACTIVITY_NAMES,
        PREPARED,
        RECORD_NOTES,
        SCHEDULE,
        ActionDone,
        ActionDoneInput,
        ActionEdit,
        ActionEditInput,
        ActionItem,
        ChangeTierInput,
        ChangeTierResult,
        Meeting,
        MeetingInput,
        MeetingProposal,
        Mode,
        Notes,
        NotesInput,
        NotesResult,
        Owner,
        Prepared,
        PreReadInput,
        QbrActivity,
        QbrCarried,
        QbrInput,
        QbrProgress,
        QbrState,
        QbrStateInput,
        ReviewInput,
        ReviewOutcome,
        ReviewState,
        ScorecardRequest,
        TierDecision,
    )
    from journeys.qbr.periods import due_at, held_this_period
    from journeys.qbr.scoring import TIER_ORDER, Recommendation, Scorecard, TierReview
    from workflows.kit import JourneyKit

ESCALATION_CHAIN = ["partner", "cam", "ops"]
DECISION_RECORDED_PATCH = "qbr-tier-decision-answer-after-record"
CONTINUE_AS_NEW_PATCH = "qbr-continue-as-new"  # a long chase of action items goes on in a new run


@workflow.defn
class QbrWorkflow:
    @workflow.init
    def __init__(self, inp: QbrInput) -> None:
        self._kit = JourneyKit(JOURNEY, inp.partner_id, inp.coverage, LEGACY_ACTIVITY_NAMES, context=self._context)
        self._inp = inp
        self._state = QbrState.preparing
        self._mode: Mode | None = None
        self._card: Scorecard | None = None
        self._meeting: Meeting | None = None
        self._scheduling = False  # a proposal is being recorded
        self._notes_recorded = False
        self._items: list[ActionItem] = []
        self._items_version = 0  # +1 at each change of an action item (the chase recomputes its plan)
        self._decision: TierDecision | None = None
        self._review: ReviewOutcome | None = None
        self._decision_recorded = False  # the tier decision's outcome is in the DB
        self._reviewing = False  # the tier review's flow is running
        if inp.carried is not None:  # a continued run: restored before any message is taken
            c = inp.carried
            self._state, self._mode, self._card, self._meeting = c.state, c.mode, c.card, c.meeting
            self._items, self._items_version, self._review = c.items, c.items_version, c.review
            self._notes_recorded = self._decision_recorded = True

    # ------------------------------------------------------------------ messages

    @workflow.update(name=SCHEDULE)
    async def schedule(self, proposal: MeetingProposal) -> Meeting:
        """The meeting time (first proposal or a reschedule): the invite goes out with the QBR's
        stable UID and the next sequence number."""
        self._scheduling = True
        sequence = self._meeting.sequence + 1 if self._meeting else 0
        meeting = Meeting(
            uid=f"{workflow.info().workflow_id}@camlights",
            sequence=sequence,
            starts_at=proposal.starts_at,
            ends_at=shifted(proposal.starts_at, timedelta(minutes=proposal.duration_minutes)),
            by=proposal.by,
            proposed_at=workflow.now(),
        )
        key = self._kit.key(f"meeting:{sequence}")
        await self._kit.queue_and_send(
            QbrActivity.RECORD_MEETING,
            MeetingInput(
                idempotency_key=key, partner_id=self._inp.partner_id, period=self._inp.period, meeting=meeting
            ),
            StepResult,
            key,
            summary=f"record the meeting ({meeting.starts_at:%Y-%m-%d %H:%M} UTC) and queue the invite",
            send_summary="send the invite to the CAM and the partner",
        )
        self._meeting, self._scheduling = meeting, False
        return meeting

    @schedule.validator
    def _validate_schedule(self, proposal: MeetingProposal) -> None:
        if self._mode != Mode.cam_meeting:
            raise ApplicationError(
                "this partner's QBR has no meeting (it is a digital review)", type=Refusal.NOT_PENDING
            )
        if self._scheduling:
            raise ApplicationError("another proposal is being recorded", type=Refusal.NOT_PENDING)
        self._kit.check_horizon("starts_at", proposal.starts_at)  # before any comparison: a naive time is refused
        proposals = self._meeting.sequence + 1 if self._meeting else 0
        self._kit.check_count(proposals, self._kit.limits.max_reschedules, "meeting proposals")
        if self._meeting is not None and workflow.now() >= self._meeting.starts_at:
            raise ApplicationError("the meeting has already taken place", type=Refusal.NOT_PENDING)
        if proposal.starts_at <= workflow.now():
            raise ApplicationError("starts_at: the meeting must be in the future", type=Refusal.TOO_SHORT)

    @workflow.update(name=RECORD_NOTES)
    async def record_notes(self, notes: Notes) -> NotesResult:
        items = [ActionItem(id=n, **item.model_dump()) for n, item in enumerate(notes.action_items, start=1)]
        await self._kit.activity(
            QbrActivity.RECORD_NOTES,
            NotesInput(
                idempotency_key=self._kit.key("notes"),
                partner_id=self._inp.partner_id,
                period=self._inp.period,
                notes=notes.notes,
                action_items=items,
                by=notes.by,
            ),
            StepResult,
            summary=f"record the notes and {len(items)} action items (by {notes.by})",
        )
        self._items, self._notes_recorded = items, True
        return NotesResult(action_items=items)

    @record_notes.validator
    def _validate_notes(self, notes: Notes) -> None:
        if self._mode != Mode.cam_meeting or self._meeting is None:
            raise ApplicationError("no meeting is scheduled for this QBR", type=Refusal.NOT_PENDING)
        if self._notes_recorded:
            raise ApplicationError("the notes of this QBR are already recorded", type=Refusal.NOT_PENDING)
        if workflow.now() < self._meeting.starts_at:
            raise ApplicationError("the meeting has not taken place yet", type=Refusal.NOT_PENDING)
        today = workflow.now().date()
        for n, item in enumerate(notes.action_items, start=1):
            self._kit.check_horizon(f"action_items[{n}].due", item.due)
            if item.due < today:
                raise ApplicationError(f"action_items[{n}].due: must not be in the past", type=Refusal.TOO_SHORT)

    @workflow.update(name=COMPLETE_ACTION)
    async def complete_action(self, done: ActionDone) -> ActionItem:
        item = self._item(done.item_id)
        await self._kit.activity(
            QbrActivity.COMPLETE_ACTION,
            ActionDoneInput(
                idempotency_key=self._kit.key(f"action:{done.item_id}:done"),
                partner_id=self._inp.partner_id,
                period=self._inp.period,
                item_id=done.item_id,
                by=done.by,
                at=workflow.now(),
            ),
            StepResult,
            summary=f"record action item {done.item_id} done (by {done.by})",
        )
        item.done_at, item.done_by = workflow.now(), done.by
        self._items_version += 1
        return item

    @complete_action.validator
    def _validate_complete(self, done: ActionDone) -> None:
        if not any(i.id == done.item_id for i in self._items):
            raise ApplicationError(
                f"no action item {done.item_id} in this QBR (items: {[i.id for i in self._items]})",
                type=Refusal.UNKNOWN_KEY,
            )
        if not self._item(done.item_id).open:
            raise ApplicationError(f"action item {done.item_id} is already closed", type=Refusal.NOT_PENDING)

    @workflow.update(name=EDIT_ACTION)
    async def edit_action(self, edit: ActionEdit) -> ActionItem:
        item = self._item(edit.item_id)
        changed = item.model_copy(
            update={
                "title": edit.title or item.title,
                "owner": edit.owner or item.owner,
                "due": edit.due or item.due,
                "cancelled_at": workflow.now() if edit.cancel else None,
                "revision": item.revision + 1,
            }
        )
        await self._kit.activity(
            QbrActivity.EDIT_ACTION,
            ActionEditInput(
                idempotency_key=self._kit.key(f"action:{item.id}:edit:{changed.revision}"),
                partner_id=self._inp.partner_id,
                period=self._inp.period,
                item=changed,
                by=edit.by,
            ),
            StepResult,
            summary=f"{'drop' if edit.cancel else 'change'} action item {item.id} (by {edit.by})",
        )
        self._items = [changed if i.id == item.id else i for i in self._items]
        self._items_version += 1
        return changed

    @edit_action.validator
    def _validate_edit(self, edit: ActionEdit) -> None:
        self._validate_complete(ActionDone(item_id=edit.item_id, by=edit.by))
        self._kit.check_horizon("due", edit.due)
        self._kit.check_count(
            self._item(edit.item_id).revision, self._kit.limits.max_reschedules, "changes of an action item"
        )
        if edit.due is not None and edit.due < workflow.now().date():
            raise ApplicationError("due: must not be in the past", type=Refusal.TOO_SHORT)

    @workflow.update(name=DECIDE_TIER)
    async def decide_tier(self, decision: TierDecision) -> ReviewOutcome:
        self._decision = decision
        if self._kit.patched(DECISION_RECORDED_PATCH):  # answered once the outcome is in the DB
            await workflow.wait_condition(lambda: self._decision_recorded)
        else:  # journeys recorded before the patch answered on the state change
            await workflow.wait_condition(
                lambda: self._review is not None and self._review.state != ReviewState.pending
            )
        assert self._review is not None
        return self._review

    @decide_tier.validator
    def _validate_decision(self, decision: TierDecision) -> None:
        if self._review is None or self._review.state != ReviewState.pending or self._decision is not None:
            raise ApplicationError("no tier review is waiting for a decision", type=Refusal.NOT_PENDING)
        if not decision.approve and not decision.reason.strip():
            raise ApplicationError("reason: an override needs a reason", type=Refusal.TOO_SHORT)
        if decision.cam_id not in (None, self._kit.coverage.cam_id) and not actors.is_ops(decision.by):
            raise ApplicationError("cam_id: only ops change a partner's CAM", type=Refusal.NOT_APPROVER)

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.apply_coverage(coverage, self._state.value)

    @workflow.query(name=PROGRESS)
    def progress(self) -> QbrProgress:
        card = self._card
        return QbrProgress(
            partner_id=self._inp.partner_id,
            period=self._inp.period,
            state=self._state,
            mode=self._mode,
            score=card.score if card else None,
            band=card.band if card else None,
            meeting=self._meeting,
            notes_recorded=self._notes_recorded,
            action_items=list(self._items),
            review=self._review,
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: QbrInput) -> QbrProgress:
        policy = await self._kit.load_policy(inp.policy_version)
        if inp.carried is not None:  # a continued run: only the chase of the action items is left
            self._kit.upsert(self._state.value)
            await self._chase(policy, set(inp.carried.sent))
            await self._set_state(QbrState.done)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self.progress()
        self._kit.upsert(self._state.value)
        tier = self._kit.coverage.tier
        card = await self._kit.activity(
            QbrActivity.COMPUTE_SCORECARD,
            ScorecardRequest(
                idempotency_key=self._kit.key("scorecard"),
                partner_id=inp.partner_id,
                period=inp.period,
                tier=tier,
                policy_version=self._kit.policy_version,
            ),
            Scorecard,
            summary=f"compute the {inp.period} scorecard ({tier.value})",
        )
        self._card = card
        rules = policy.qbr.tiers[tier]
        if not held_this_period(inp.period, rules.every_quarters):
            await self._set_state(QbrState.snapshot_only)
        elif rules.mode == Mode.cam_meeting and self._kit.has_cam():
            self._mode = Mode.cam_meeting
            await self._set_state(QbrState.scheduling)
            await self._kit.notify("schedule_request", ["cam", "partner"], score=card.score, band=card.band.value)
        else:
            self._mode = Mode.digital if rules.mode == Mode.cam_meeting else rules.mode
            await self._kit.notify(
                "scorecard",
                ["partner"],
                score=card.score,
                band=card.band.value,
                trend=card.trend,
                actions=card.actions,
                metrics=[m.model_dump(mode="json") for m in card.metrics],
            )
            await self._set_state(QbrState.scorecard_sent)
        if inp.cycle_id:
            await self._kit.tell(inp.cycle_id, PREPARED, Prepared(workflow_id=workflow.info().workflow_id))
        flows = []
        if self._mode == Mode.cam_meeting:
            flows.append(self._meeting_flow(policy))
        if held_this_period(inp.period, policy.qbr.review_every_quarters):
            flows.append(self._reviewed(policy, card.review))
        await asyncio.gather(*flows)
        if self._mode == Mode.cam_meeting and self._state != QbrState.missed:
            await self._set_state(QbrState.done)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    # ------------------------------------------------------------------ the CAM-led QBR

    async def _meeting_flow(self, policy: ProgramPolicy) -> None:
        q = policy.qbr
        deadline = workflow.now() + policy.days(q.schedule_deadline_days)
        closes = workflow.now() + policy.days(q.meeting_window_days)
        if not await self._kit.wait_until(
            lambda: self._meeting is not None,
            deadline,
            summary="scheduling deadline: alert the CAM",
            waiting_for="the CAM or the partner to propose a meeting time",
        ):
            await self._kit.notify("schedule_overdue", ["cam"])
            if not await self._kit.wait_until(
                lambda: self._meeting is not None,
                closes,
                summary="meeting window ends: the QBR is missed",
                waiting_for="a meeting time",
            ):
                return await self._set_state(QbrState.missed)
        while True:
            meeting = self._meeting
            assert meeting is not None
            seq = meeting.sequence

            def moved(seq: int = seq) -> bool:
                return self._meeting is not None and self._meeting.sequence != seq

            await self._set_state(QbrState.scheduled, step=f"scheduled:{seq}")
            pre_read_at = shifted(meeting.starts_at, -policy.days(q.pre_read_hours / 24))
            if await self._kit.wait_until(
                moved,
                pre_read_at,
                summary="pre-read: send the package",
                waiting_for="the pre-read time or a reschedule",
            ):
                continue
            key = self._kit.key(f"pre_read:{seq}")
            await self._kit.queue_and_send(
                QbrActivity.QUEUE_PRE_READ,
                PreReadInput(
                    idempotency_key=key,
                    partner_id=self._inp.partner_id,
                    period=self._inp.period,
                    recipients=["cam", "partner"],
                ),
                StepResult,
                key,
                summary="queue the pre-read package to the CAM and the partner",
                send_summary="send the pre-read package to the CAM and the partner",
            )
            await self._set_state(QbrState.pre_read_sent, step=f"pre_read:{seq}")
            if await self._kit.wait_until(moved, meeting.ends_at, summary="the meeting", waiting_for="the meeting"):
                continue
            break
        assert self._meeting is not None
        notes_due = shifted(self._meeting.ends_at, policy.days(q.notes_due_days))
        if not await self._kit.wait_until(
            lambda: self._notes_recorded, notes_due, summary="notes due: remind the CAM", waiting_for="the CAM's notes"
        ):
            await self._kit.notify("notes_reminder", ["cam"])
            if not await self._kit.wait_until(
                lambda: self._notes_recorded,
                max(closes, notes_due),
                summary="meeting window ends: no notes",
                waiting_for="the CAM's notes",
            ):
                return await self._set_state(QbrState.missed)
        if self._items:
            await self._set_state(QbrState.following_up)
            await self._chase(policy)

    async def _chase(self, policy: ProgramPolicy, sent: set[str] | None = None) -> None:
        """Each open action item: a reminder to its owner before it is due, then escalations one
        level up the chain (partner, CAM, ops) each `action_escalation_days` it stays overdue.
        The plan is recomputed whenever an item is completed, changed or dropped."""
        sent = sent or set()
        while True:
            plan = [e for e in self._chase_plan(policy) if e[4] not in sent]
            if not plan:
                return
            await self._continue_if_long(sent)
            at, item_id, template, to, step = plan[0]
            version = self._items_version
            if await self._kit.wait_until(
                lambda version=version: self._items_version != version,  # type: ignore[misc]
                at,
                summary=f"action item {item_id}: {template.replace('_', ' ')} to {to[0]}",
                waiting_for="the action items to be completed",
            ):
                continue
            item = self._item(item_id)
            await self._kit.notify(
                template,
                to,
                step=step,
                item=item.title,
                due=item.due.isoformat(),
                owner=item.owner.value,
                escalated_to=to[0],
            )
            sent.add(step)

    async def _continue_if_long(self, sent: set[str]) -> None:
        """A chase whose history has grown (edits of action items) continues as new once the tier
        review is settled (nothing else runs then), carrying the items and what was sent."""
        if self._reviewing or not self._kit.history_full() or not self._kit.patched(CONTINUE_AS_NEW_PATCH):
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = QbrCarried(
            state=self._state,
            mode=self._mode,
            card=self._card,
            meeting=self._meeting,
            items=self._items,
            items_version=self._items_version,
            review=self._review,
            sent=sorted(sent),
        )
        workflow.continue_as_new(
            self._inp.model_copy(
                update={
                    "coverage": self._kit.coverage,
                    "policy_version": self._kit.policy_version,
                    "cycle_id": None,
                    "carried": carried,
                }
            )
        )

    def _chase_plan(self, policy: ProgramPolicy) -> list[tuple[datetime, int, str, list[str], str]]:
        """(when, item, template, recipients, step) of every open item, soonest first."""
        q = policy.qbr
        events: list[tuple[datetime, int, str, list[str], str]] = []
        for item in self._items:
            if not item.open:
                continue
            item_due = due_at(item.due, q.time_zone)
            owner = "partner" if item.owner == Owner.partner else "cam"
            rev = f".{item.revision}" if item.revision else ""
            events.append(
                (
                    shifted(item_due, -policy.days(q.action_reminder_days)),
                    item.id,
                    "action_reminder",
                    [owner],
                    f"action_reminder:{item.id}{rev}:{owner}",
                )
            )
            for n, role in enumerate(ESCALATION_CHAIN[ESCALATION_CHAIN.index(owner) + 1 :], start=1):
                at = shifted(item_due, policy.days(n * q.action_escalation_days))
                events.append(
                    (at, item.id, "action_escalation", [role, owner], f"action_escalation:{item.id}{rev}:{role}")
                )
        return sorted(events, key=lambda e: (e[0], e[1], e[2]))

    # ------------------------------------------------------------------ the tier review

    async def _reviewed(self, policy: ProgramPolicy, review: TierReview | None) -> None:
        self._reviewing = True
        try:
            await self._review_flow(policy, review)
        finally:
            self._reviewing = False

    async def _review_flow(self, policy: ProgramPolicy, review: TierReview | None) -> None:
        if review is None or review.recommendation == Recommendation.hold or review.to_tier is None:
            self._review = ReviewOutcome(state=ReviewState.held, recommendation=Recommendation.hold)
            await self._record_review("held", review.reasons if review else [])
            return
        self._review = ReviewOutcome(
            state=ReviewState.pending, recommendation=review.recommendation, to_tier=review.to_tier
        )
        await self._record_review("pending", review.reasons)
        approver = ["cam"] if self._kit.has_cam() else ["ops"]
        await self._kit.notify(
            "tier_review",
            approver,
            recommendation=review.recommendation.value,
            to_tier=review.to_tier.value,
            reasons=review.reasons,
            period=self._inp.period,
        )
        await self._kit.wait_for(lambda: self._decision is not None, waiting_for="the tier decision of the CAM (ops)")
        decision = self._decision
        assert decision is not None
        current = self._kit.coverage.tier
        final = review.to_tier if decision.approve else decision.to_tier
        reason = decision.reason or f"{review.recommendation.value} approved: {'; '.join(review.reasons)}"
        if final is None or final == current:
            self._review = self._review.model_copy(
                update={"state": ReviewState.kept, "decided": Recommendation.hold, "to_tier": None}
            )
            await self._record_review("kept", review.reasons, decision=decision)
            return
        decided = (
            Recommendation.promote if TIER_ORDER.index(final) > TIER_ORDER.index(current) else Recommendation.demote
        )
        if decided == Recommendation.promote:
            await self._change_tier(final, decision.cam_id, decision.by, reason)
            self._review = self._review.model_copy(
                update={"state": ReviewState.changed, "decided": decided, "to_tier": final}
            )
            await self._record_review("changed", review.reasons, decision=decision)
            await self._kit.notify("tier_changed", ["partner", "cam"], to_tier=final.value, reasons=review.reasons)
            return
        # A demotion: first the remediation period, with a letter listing what is missing.
        started = workflow.now()
        ends = started + policy.days(policy.qbr.remediation_days)
        self._review = self._review.model_copy(
            update={"state": ReviewState.remediation, "decided": decided, "to_tier": final, "remediation_ends": ends}
        )
        await self._record_review("remediation", review.reasons, decision=decision)
        await self._kit.notify(
            "remediation",
            ["partner", "cam" if self._kit.has_cam() else "ops"],
            to_tier=final.value,
            missing=review.reasons,
            ends_on=ends.date().isoformat(),
        )
        await self._kit.wait_until(
            lambda: False, ends, summary="remediation ends: check the tier's rules again", waiting_for="the recovery"
        )
        recheck = await self._kit.activity(
            QbrActivity.COMPUTE_SCORECARD,
            ScorecardRequest(
                idempotency_key=self._kit.key("recheck"),
                partner_id=self._inp.partner_id,
                period=self._inp.period,
                tier=current,
                policy_version=self._kit.policy_version,
                window_start=started,
                window_end=ends,
            ),
            Scorecard,
            summary="check the tier's rules over the remediation period",
        )
        still = recheck.review is not None and recheck.review.recommendation == Recommendation.demote
        if still:
            await self._change_tier(final, None, decision.by, f"remediation ended without recovery: {reason}")
            self._review = self._review.model_copy(update={"state": ReviewState.changed})
            await self._record_review("changed", recheck.review.reasons if recheck.review else [], decision=decision)
            await self._kit.notify("tier_changed", ["partner", "cam"], to_tier=final.value, reasons=review.reasons)
        else:
            self._review = self._review.model_copy(update={"state": ReviewState.recovered, "to_tier": None})
            await self._record_review(
                "recovered", [f"score {recheck.score:g} over the remediation period"], decision=decision
            )
            await self._kit.notify(
                "recovered", ["partner", "cam" if self._kit.has_cam() else "ops"], score=recheck.score
            )

    async def _change_tier(self, tier: Tier, cam_id: str | None, by: str, reason: str) -> None:
        """The coverage-change path: the partner row and its audit row, then every journey of the
        partner that follows coverage is told (CHANGE_COVERAGE), this one included."""
        result = await self._kit.activity(
            QbrActivity.CHANGE_TIER,
            ChangeTierInput(
                idempotency_key=self._kit.key(f"tier:{tier.value}"),
                partner_id=self._inp.partner_id,
                tier=tier,
                cam_id=cam_id,
                keep_cam=True,
                by=by,
                reason=reason[:1000],
            ),
            ChangeTierResult,
            summary=f"change the partner's tier to {tier.value}",
        )
        self._kit.apply_coverage(result.coverage, self._state.value)
        for wid in result.workflow_ids:
            await self._kit.tell(wid, CHANGE_COVERAGE, result.coverage)

    async def _record_review(self, step: str, reasons: list[str], *, decision: TierDecision | None = None) -> None:
        review = self._review
        assert review is not None
        await self._kit.activity(
            QbrActivity.RECORD_REVIEW,
            ReviewInput(
                idempotency_key=self._kit.key(f"review:{step}"),
                partner_id=self._inp.partner_id,
                period=self._inp.period,
                state=review.state,
                recommendation=review.recommendation,
                reasons=reasons,
                decided=review.decided,
                to_tier=review.to_tier,
                decided_by=decision.by if decision else None,
                reason=decision.reason if decision else None,
                remediation_ends=review.remediation_ends,
            ),
            StepResult,
            summary=f"record the tier review: {review.state.value}",
        )
        if decision is not None:
            self._decision_recorded = True

    # ------------------------------------------------------------------ helpers

    def _item(self, item_id: int) -> ActionItem:
        return next(i for i in self._items if i.id == item_id)

    async def _set_state(self, state: QbrState, *, step: str | None = None, by: str = actors.SYSTEM) -> None:
        self._state = state
        record = QbrStateInput(
            idempotency_key=self._kit.key(f"state:{step or state.value}"),
            partner_id=self._inp.partner_id,
            period=self._inp.period,
            state=state,
            by=by,
            at=workflow.now(),
        )
        await self._kit.record_state(state.value, QbrActivity.RECORD_STATE, record, by=by)

    def _context(self) -> dict[str, Any]:
        return {"partner_name": self._inp.partner_name, "period": self._inp.period}
