"""Market development funds, the request journey: `mdf-{request_id}` (the fund journey is in fund.py).

A request's funds are reserved at submission (by the API, atomically). Approval by amount level
(the CAM, or ops for tiers without one, then the policy's further levels), each level with an SLA
reminder and an escalation; long-tail partners' pre-approved activities up to a limit need no
human. Decisions: approve, approve a lower amount (the difference released at once), reject (all
released), return for changes (the partner resubmits; the reservation follows the new amount).
An approved activity must start within the pre-approval validity; after its end the claim window
runs, with reminders; the claim (with proof) is reviewed by the same levels: approve, approve in
part, deny, or return for more proof. Approved claims become due for payment at the policy's
cut-off; ops record payments; paid in full, the reservation's remainder is released.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import actors
    from domain.journeys import CHANGE_COVERAGE, PROGRESS, Coverage, NotifyResult, Refusal, StepResult, shifted
    from journeys.mdf.domain import (
        ADD_PROOF,
        CHANGE_DATES,
        DECIDE,
        DECIDE_CLAIM,
        JOURNEY,
        LEGACY_ACTIVITY_NAMES,
        RECORD_PAYMENT,
        RESUBMIT,
        START_ACTIVITY,
        SUBMIT_CLAIM,
        ApprovalRequestInput,
        ClaimSubmission,
        DateChange,
        Decision,
        LevelDecision,
        MdfActivity,
        MdfAnswer,
        MdfDecision,
        MdfInput,
        MdfProgress,
        MdfResult,
        MdfState,
        MdfStateInput,
        Payment,
        PaymentInput,
        ProofAdded,
        ReserveInput,
        ReserveResult,
        Resubmission,
        StartActivity,
        days_between,
        end_of_day,
        money,
        next_cutoff,
        reimbursable,
    )
    from journeys.mdf.events import MdfEvent
    from journeys.mdf.policy import ApprovalLevel
    from workflows.kit import JourneyKit

REQUEST, CLAIM = "request", "claim"
# The patch of issue 29: links bound to their level, ops need a level above the first, one approver per level.
APPROVER_LEVELS = "mdf-approver-levels"
DATES_PATCH = "mdf-dates-recorded"
PUBLISHED = (
    MdfState.approved,
    MdfState.rejected,
    MdfState.claim_approved,
    MdfState.claim_denied,
    MdfState.paid,
    MdfState.expired,
)


@workflow.defn
class MdfWorkflow:
    @workflow.init
    def __init__(self, inp: MdfInput) -> None:
        self._kit = JourneyKit(JOURNEY, inp.partner_id, inp.coverage, LEGACY_ACTIVITY_NAMES, context=self._context)
        self._inp = inp
        self._state = inp.state
        self._amount = inp.amount_minor  # what the request asks (program currency)
        self._reserved = inp.amount_minor  # reserved by the API at submission
        self._title = inp.title
        self._start, self._end = inp.planned_start, inp.planned_end
        self._approved: int | None = None
        self._levels: list[ApprovalLevel] = []
        self._level: int | None = None  # index of the level waiting for a decision
        self._deciding = 0  # the amount the waiting level decides on (lowered by the levels before it)
        self._decision: MdfDecision | None = None  # taken by the run loop
        self._settled = 0  # decisions (and other steps answered by updates) fully recorded
        self._decisions: list[LevelDecision] = []
        self._approvers: list[str] = []  # who approved a level of the current round (separation of duties)
        self._rounds = 0  # submissions of the request (1 + resubmissions)
        self._resubmitted = False
        self._resubmitting = False  # a resubmission's reservation is under way
        self._started = False
        self._start_by: datetime | None = None
        self._claim: ClaimSubmission | None = None
        self._claim_rounds = 0
        self._proof_added = False
        self._claim_by: datetime | None = None
        self._approved_claim: int | None = None
        self._payments: list[Payment] = []
        self._paid = 0
        self._paying = 0
        self._paid_recorded = False
        self._date_changes = 0

    # ------------------------------------------------------------------ decisions (request and claim)

    @workflow.update(name=DECIDE)
    async def decide(self, decision: MdfDecision) -> MdfAnswer:
        return await self._take(decision, MdfState.pending_approval)

    @decide.validator
    def _validate_decide(self, decision: MdfDecision) -> None:
        self._check_decision(
            REQUEST, MdfState.pending_approval, decision, self._deciding if self._level is not None else self._amount
        )

    @workflow.update(name=DECIDE_CLAIM)
    async def decide_claim(self, decision: MdfDecision) -> MdfAnswer:
        return await self._take(decision, MdfState.claim_review)

    @decide_claim.validator
    def _validate_decide_claim(self, decision: MdfDecision) -> None:
        claimed = self._claim.amount_minor if self._claim else 0
        self._check_decision(
            CLAIM, MdfState.claim_review, decision, self._deciding if self._level is not None else claimed
        )

    async def _take(self, decision: MdfDecision, state: MdfState) -> MdfAnswer:
        """A decision that arrives before the journey reached its level (just started or resubmitted)
        waits for it, then is checked again against that level."""
        await workflow.wait_condition(lambda: self._level is not None or self._state != state)
        if self._state != state or self._level is None or self._decision is not None:
            raise ApplicationError(
                f"MDF request {self._inp.request_id} is {self._state.value}: the decision is no longer awaited",
                type=Refusal.NOT_PENDING,
            )
        if self._kit.patched(APPROVER_LEVELS):  # checked again at the level actually reached
            stage = REQUEST if state == MdfState.pending_approval else CLAIM
            self._check_approver(stage, decision, self._level, self._deciding)
        elif not self._may_decide_before_levels(decision, self._level):
            raise ApplicationError(
                f"{decision.by} may not decide at the {self._levels[self._level].name} level", type=Refusal.NOT_APPROVER
            )
        ticket = self._settled
        self._decision = decision
        await workflow.wait_condition(lambda: self._settled > ticket)
        return self._answer()

    def _check_decision(self, stage: str, state: MdfState, d: MdfDecision, amount: int) -> None:
        if self._state != state or self._decision is not None:
            raise ApplicationError(
                f"MDF request {self._inp.request_id} is {self._state.value}: no {stage} decision is awaited",
                type=Refusal.NOT_PENDING,
            )
        index = self._level if self._level is not None else 0  # not reached yet: the first level
        self._check_approver(stage, d, index, amount)
        if d.decision == Decision.approve_lower and not (d.amount_minor and 0 < d.amount_minor < amount):
            raise ApplicationError(
                f"amount: approving a lower amount needs an amount between 0 and {amount} (minor units)",
                type=Refusal.INVALID,
            )
        if d.decision in (Decision.reject, Decision.return_) and not d.reason.strip():
            raise ApplicationError(f"reason: required to {d.decision.value} a {stage}", type=Refusal.INVALID)

    def _check_approver(self, stage: str, d: MdfDecision, index: int, amount: int) -> None:
        """Who may decide level `index` (0: the first): its CAM (first level only) or ops; an ops
        approver without a level decides the first level only, later levels need an approver level
        at least as high; a one-click link decides only the level, round and amount it was issued
        for, and only the first level; nobody decides two levels of one round (separation of duties)."""
        name = self._levels[index].name if self._level is not None and self._levels else "first"
        where = f"the {name} level (level {index + 1}) of this {stage}"
        if d.link is not None:
            issued = (d.link.level, d.link.round, d.link.amount_minor)
            if d.link.level != 0 or issued != (index, self._round(stage), amount):
                raise ApplicationError(
                    f"this link was issued for level {d.link.level + 1} of submission {d.link.round} "
                    f"({money(d.link.amount_minor, self._inp.currency)}); the {stage} is now at level {index + 1} of "
                    f"submission {self._round(stage)} ({money(amount, self._inp.currency)}): decide it signed in",
                    type=Refusal.NOT_PENDING,
                )
        if actors.is_ops(d.by):
            allowed = index == 0 or (d.approver_level is not None and d.approver_level >= index + 1)
        else:
            allowed = index == 0 and self._is_cam(d.by)
        if not allowed:
            raise ApplicationError(f"{d.by} may not decide at {where}", type=Refusal.NOT_APPROVER)
        if d.by in self._approvers:
            raise ApplicationError(
                f"{d.by} already approved an earlier level of this {stage}: each level needs another approver",
                type=Refusal.NOT_APPROVER,
            )

    def _may_decide_before_levels(self, d: MdfDecision, level: int) -> bool:
        """The rule of histories recorded before APPROVER_LEVELS (replayed as they ran)."""
        if actors.is_ops(d.by):
            return d.approver_level is None or d.approver_level >= level + 1
        return level == 0 and self._is_cam(d.by)

    # ------------------------------------------------------------------ the partner's changes

    @workflow.update(name=RESUBMIT)
    async def resubmit(self, change: Resubmission) -> MdfAnswer:
        self._rounds += 1
        self._resubmitting = True  # a second resubmission is refused while this one reserves
        try:
            got = await self._reserve(change.amount_minor, f"reserve:{self._rounds}", change.by)
        finally:
            self._resubmitting = False
        if not got.ok:
            self._rounds -= 1
            raise ApplicationError(
                f"the fund has {money(got.available_minor, self._inp.currency)} available besides what this "
                f"request holds ({money(got.reserved_minor, self._inp.currency)}): "
                f"{money(change.amount_minor, self._inp.currency)} cannot be reserved",
                type=Refusal.INSUFFICIENT_FUNDS,
            )
        self._amount, self._title = change.amount_minor, change.title
        self._start, self._end = change.planned_start, change.planned_end
        ticket = self._settled
        self._resubmitted = True
        await workflow.wait_condition(lambda: self._settled > ticket)
        return self._answer()

    @resubmit.validator
    def _validate_resubmit(self, change: Resubmission) -> None:
        if self._state != MdfState.returned or self._resubmitted or self._resubmitting:
            raise ApplicationError(
                f"MDF request is {self._state.value}: only a returned request is resubmitted", type=Refusal.NOT_PENDING
            )
        self._check_partner_side(change.by)
        self._check_dates(change.planned_start, change.planned_end)

    @workflow.update(name=CHANGE_DATES)
    async def change_dates(self, change: DateChange) -> MdfAnswer:
        self._date_changes += 1
        self._start, self._end = change.planned_start, change.planned_end
        # The request's row carries the new dates by the answer (journeys recorded before: the audit only).
        dates = {"planned_start": self._start, "planned_end": self._end} if self._kit.patched(DATES_PATCH) else {}
        await self._record(
            self._state,
            by=change.by,
            step=f"dates:{self._date_changes}",
            reason=f"dates moved to {change.planned_start} – {change.planned_end}",
            **dates,
        )
        return self._answer()

    @change_dates.validator
    def _validate_change_dates(self, change: DateChange) -> None:
        if self._state != MdfState.approved:
            raise ApplicationError(
                f"MDF request is {self._state.value}: dates move only after approval and before the activity starts",
                type=Refusal.NOT_PENDING,
            )
        self._check_partner_side(change.by)
        self._check_dates(change.planned_start, change.planned_end)
        self._kit.check_count(self._date_changes, self._kit.limits.max_date_changes, "date changes")

    @workflow.update(name=START_ACTIVITY)
    async def start_activity(self, start: StartActivity) -> MdfAnswer:
        ticket = self._settled
        self._started = True
        await workflow.wait_condition(lambda: self._settled > ticket)
        return self._answer()

    @start_activity.validator
    def _validate_start(self, start: StartActivity) -> None:
        if self._state != MdfState.approved or self._started:
            raise ApplicationError(
                f"MDF request is {self._state.value}: only an approved activity starts", type=Refusal.NOT_PENDING
            )
        self._check_partner_side(start.by)

    @workflow.update(name=SUBMIT_CLAIM)
    async def submit_claim(self, claim: ClaimSubmission) -> MdfAnswer:
        ticket = self._settled
        self._started = True
        self._claim = claim
        # Answered once the claim is recorded and its first level waits (a claim sent before the
        # start follows the `running` step, whose state is set before that step settles).
        await workflow.wait_condition(
            lambda: (
                self._settled > ticket
                and self._state != MdfState.running
                and (self._level is not None or self._state != MdfState.claim_review)
            )
        )
        return self._answer()

    @submit_claim.validator
    def _validate_claim(self, claim: ClaimSubmission) -> None:
        if self._state not in (MdfState.approved, MdfState.running) or self._claim is not None:
            raise ApplicationError(
                f"MDF request is {self._state.value}: a claim is submitted once, for an approved activity",
                type=Refusal.NOT_PENDING,
            )
        self._check_partner_side(claim.by)
        assert self._kit.policy is not None and self._approved is not None
        kind = self._kit.policy.mdf.activity_type(self._inp.activity_type)
        missing = [p.value for p in (kind.proof if kind else []) if p not in claim.proof_kinds]
        if missing:
            raise ApplicationError(
                f"files: the {self._inp.activity_type} claim needs proof of kind {', '.join(missing)}",
                type=Refusal.INVALID,
            )
        cap = min(self._approved, reimbursable(claim.total_cost_minor, self._inp.partner_share_percent))
        if claim.amount_minor > cap:
            raise ApplicationError(
                f"amount: at most {money(cap, self._inp.currency)} can be claimed (approved "
                f"{money(self._approved, self._inp.currency)}; {self._inp.partner_share_percent:g}% of the cost "
                "is the partner's share)",
                type=Refusal.INVALID,
            )

    @workflow.update(name=ADD_PROOF)
    async def add_proof(self, added: ProofAdded) -> MdfAnswer:
        ticket = self._settled
        self._proof_added = True
        await workflow.wait_condition(lambda: self._settled > ticket)
        return self._answer()

    @add_proof.validator
    def _validate_add_proof(self, added: ProofAdded) -> None:
        if self._state != MdfState.claim_returned or self._proof_added:
            raise ApplicationError(
                f"MDF request is {self._state.value}: proof is added to a returned claim", type=Refusal.NOT_PENDING
            )
        self._check_partner_side(added.by)

    @workflow.update(name=RECORD_PAYMENT)
    async def record_payment(self, payment: Payment) -> MdfAnswer:
        self._payments.append(payment)
        number = len(self._payments)
        self._paying += payment.amount_minor  # counted by the validator at once, paid once recorded
        await self._kit.write(  # local since the kit's generation 7
            MdfActivity.RECORD_PAYMENT,
            PaymentInput(
                idempotency_key=self._kit.key(f"payment:{number}"), request_id=self._inp.request_id, payment=payment
            ),
            StepResult,
            summary=f"record payment {number} ({money(payment.amount_minor, self._inp.currency)})",
            since=7,
        )
        self._paying -= payment.amount_minor
        self._paid += payment.amount_minor
        await self._kit.emit(
            "mdf.payment_recorded", self._event(payment.by, payment.reference), step=f"payment:{number}"
        )
        if self._approved_claim is not None and self._paid >= self._approved_claim:
            await workflow.wait_condition(lambda: self._paid_recorded)  # answered once it is in the DB
        return self._answer()

    @record_payment.validator
    def _validate_payment(self, payment: Payment) -> None:
        if self._state not in (MdfState.claim_approved, MdfState.due_for_payment) or self._approved_claim is None:
            raise ApplicationError(
                f"MDF request is {self._state.value}: payments are recorded for an approved claim",
                type=Refusal.NOT_PENDING,
            )
        if not actors.is_ops(payment.by):
            raise ApplicationError("only ops record payments", type=Refusal.NOT_APPROVER)
        self._kit.check_horizon("paid_on", payment.paid_on)
        due = self._approved_claim - self._paid - self._paying
        if payment.amount_minor > due:
            raise ApplicationError(f"amount: {money(due, self._inp.currency)} remains to be paid", type=Refusal.INVALID)
        if any(p.reference == payment.reference for p in self._payments):
            raise ApplicationError(
                f"reference: payment {payment.reference} is already recorded", type=Refusal.NOT_PENDING
            )

    # ------------------------------------------------------------------ shared messages

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.apply_coverage(coverage, self._state.value)

    @workflow.query(name=PROGRESS)
    def progress(self) -> MdfProgress:
        return MdfProgress(
            request_id=self._inp.request_id,
            partner_id=self._inp.partner_id,
            state=self._state,
            policy_version=self._kit.policy_version,
            level=self._levels[self._level].name if self._level is not None and self._levels else None,
            levels=[lv.name for lv in self._levels],
            amount_minor=self._amount,
            approved_minor=self._approved,
            reserved_minor=self._reserved,
            claim_minor=self._claim.amount_minor if self._claim else None,
            approved_claim_minor=self._approved_claim,
            paid_minor=self._paid,
            planned_start=self._start,
            planned_end=self._end,
            start_by=self._start_by,
            claim_by=self._claim_by,
            decisions=self._decisions,
            payments=self._payments,
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: MdfInput) -> MdfResult:
        await self._kit.load_policy(inp.policy_version)
        self._kit.upsert(self._state.value)
        self._rounds = 1
        await self._kit.notify(
            "submitted", ["partner"], step="submitted:1", events=[self._kit.event("mdf.requested", self._event(None))]
        )

        while True:
            outcome = await self._approve(REQUEST)
            if outcome != Decision.return_:
                break
            if not await self._await_resubmission():
                return await self._close(MdfState.expired, "returned for changes and not resubmitted in time")
        if outcome == Decision.reject:
            return await self._close(MdfState.rejected, self._last_reason(), by=self._decisions[-1].by)
        await self._approved_step()

        if not await self._await_start():
            return await self._close(MdfState.expired, "the activity did not start within the pre-approval validity")
        if not await self._await_claim():
            return await self._close(MdfState.expired, "no claim within the claim window")

        while True:
            outcome = await self._approve(CLAIM)
            if outcome != Decision.return_:
                break
            if not await self._await_proof():
                return await self._close(MdfState.expired, "the returned claim got no proof within the claim window")
        if outcome == Decision.reject:
            return await self._close(MdfState.claim_denied, self._last_reason(), by=self._decisions[-1].by)
        await self._claim_approved_step()
        await self._await_payment()
        return await self._finish()

    # ------------------------------------------------------------------ approval by levels

    async def _approve(self, stage: str) -> Decision:
        """Every level the amount needs decides in turn. Returns approve (all levels approved,
        perhaps for less), reject or return."""
        policy = self._kit.policy
        assert policy is not None
        rules = policy.mdf
        state = MdfState.pending_approval if stage == REQUEST else MdfState.claim_review
        amount = self._amount if stage == REQUEST else self._claim.amount_minor  # type: ignore[union-attr]
        self._levels = rules.levels_for(amount)
        if stage == CLAIM:
            await self._record(
                state,
                by=self._claim.by,  # type: ignore[union-attr]
                step=f"claim:{self._claim_rounds}",
                claim_minor=amount,
                awaiting_level=0,
            )
            self._settled += 1
        kind = rules.activity_type(self._inp.activity_type)
        if (
            stage == REQUEST
            and not self._kit.has_cam()
            and kind is not None
            and kind.pre_approved
            and self._inp.currency == rules.currency
            and amount <= rules.auto_approve_max_minor[self._kit.coverage.tier]
        ):
            self._log(
                stage,
                "auto",
                Decision.approve,
                None,
                actors.SYSTEM,
                f"pre-approved {kind.key} up to "
                f"{money(rules.auto_approve_max_minor[self._kit.coverage.tier], rules.currency)}",
            )
            self._approved = amount
            return Decision.approve
        index = 0
        self._approvers = []
        while index < len(self._levels):
            self._deciding = amount
            self._level = index
            decision = await self._await_level(stage, index)
            self._level = None
            self._decision = None
            self._log(
                stage, self._levels[index].name, decision.decision, decision.amount_minor, decision.by, decision.reason
            )
            if decision.decision in (Decision.reject, Decision.return_):
                return decision.decision
            self._approvers.append(decision.by)
            if decision.decision == Decision.approve_lower:
                assert decision.amount_minor is not None
                amount = decision.amount_minor
                if stage == REQUEST:
                    await self._reserve_or_fail(amount, f"lower:{self._rounds}:{index}", decision.by)
                self._levels = self._levels[: index + 1] + [
                    lv for lv in rules.levels_for(amount)[index + 1 :]
                ]  # a lower amount may need fewer levels
            if stage == REQUEST:
                self._approved = amount
            else:
                self._approved_claim = amount
            index += 1
            if index < len(self._levels):  # the next level: recorded, then the update is answered
                await self._record(
                    state,
                    by=decision.by,
                    step=f"{stage}:{self._round(stage)}:level:{index}",
                    reason=f"approved at the {self._levels[index - 1].name} level",
                    awaiting_level=index,
                )
                self._settled += 1
        return Decision.approve

    async def _await_level(self, stage: str, index: int) -> MdfDecision:
        policy = self._kit.policy
        assert policy is not None
        level = self._levels[index]
        approver = "cam" if index == 0 and self._kit.has_cam() else "ops"
        who = f"a decision at the {level.name} level ({'the CAM' if approver == 'cam' else 'ops'})"
        prefix = f"{stage}:{self._round(stage)}:{level.name}"
        if self._decision is not None:  # decided before the journey asked
            return self._taken()
        await self._request_decision(stage, index, f"{stage}_approval_request", approver, f"{prefix}:request")
        sla = policy.days(level.sla_days)
        if await self._kit.wait(
            lambda: self._decision is not None, sla, summary=f"{level.name} SLA: remind {approver}", waiting_for=who
        ):
            return self._taken()
        await self._request_decision(stage, index, f"{stage}_approval_reminder", approver, f"{prefix}:reminder")
        if await self._kit.wait(
            lambda: self._decision is not None,
            policy.days(level.escalation_days) - sla,
            summary=f"{level.name} escalation: ask ops",
            waiting_for=who,
        ):
            return self._taken()
        await self._request_decision(stage, index, f"{stage}_approval_escalation", "ops", f"{prefix}:escalation")
        await self._kit.wait_for(lambda: self._decision is not None, waiting_for=f"{who}, escalated to ops")
        return self._taken()

    def _taken(self) -> MdfDecision:
        assert self._decision is not None
        return self._decision

    async def _request_decision(self, stage: str, index: int, template: str, approver: str, step: str) -> None:
        policy = self._kit.policy
        assert policy is not None
        key = self._kit.key(f"notify:{step}")
        await self._kit.queue_and_send(
            MdfActivity.QUEUE_APPROVAL_REQUEST,
            ApprovalRequestInput(
                idempotency_key=key,
                request_id=self._inp.request_id,
                stage=stage,
                level=index,
                approver=approver,
                template=template,
                context={**self._context(), "level": self._levels[index].name, "level_number": index + 1},
                link_valid_until=workflow.now() + policy.days(policy.mdf.decision_link_days),
                round=self._round(stage),
                amount_minor=self._deciding,
            ),
            NotifyResult,
            key,
            summary=f"queue the {template.replace('_', ' ')} ({self._levels[index].name} level) to {approver}",
            send_summary=f"email the {template.replace('_', ' ')} to {approver}",
        )

    # ------------------------------------------------------------------ steps

    async def _await_resubmission(self) -> bool:
        policy = self._kit.policy
        assert policy is not None
        await self._record(
            MdfState.returned, by=self._decisions[-1].by, step=f"returned:{self._rounds}", reason=self._last_reason()
        )
        self._settled += 1
        await self._kit.notify("returned", ["partner"], step=f"returned:{self._rounds}", reason=self._last_reason())
        if not await self._kit.wait(
            lambda: self._resubmitted,
            policy.days(policy.mdf.pre_approval_days),
            summary="the returned request expires",
            waiting_for="the partner's resubmission",
        ):
            return False
        self._resubmitted = False
        self._reserved = self._amount
        await self._record(
            MdfState.pending_approval,
            by=actors.partner(self._inp.partner_id),
            step=f"resubmitted:{self._rounds}",
            reason="resubmitted with changes",
            planned_start=self._start,
            planned_end=self._end,
            title=self._title,
            amount_minor=self._amount,
            awaiting_level=0,
        )
        await self._kit.notify("submitted", ["partner"], step=f"submitted:{self._rounds}")
        self._settled += 1  # answered once the first level waits (set before the next yield)
        return True

    async def _approved_step(self) -> None:
        policy = self._kit.policy
        assert policy is not None and self._approved is not None
        self._start_by = workflow.now() + policy.days(policy.mdf.pre_approval_days)
        last = self._decisions[-1]
        await self._record(
            MdfState.approved, by=last.by, step="approved", reason=last.reason, approved_minor=self._approved
        )
        self._settled += 1
        await self._kit.notify("approved", ["partner"] + (["cam"] if self._kit.has_cam() else []))

    async def _await_start(self) -> bool:
        assert self._start_by is not None
        if not await self._kit.wait_until(
            lambda: self._started,
            self._start_by,
            summary="pre-approval validity ends",
            waiting_for="the partner to start the activity (or claim)",
        ):
            return False
        await self._record(MdfState.running, by=actors.partner(self._inp.partner_id), step="running")
        self._settled += 1
        return True

    def _window_end(self) -> datetime:
        policy = self._kit.policy
        assert policy is not None
        return shifted(
            max(end_of_day(self._end, policy.mdf.time_zone), workflow.now()), policy.days(policy.mdf.claim_window_days)
        )

    async def _await_claim(self) -> bool:
        policy = self._kit.policy
        assert policy is not None
        self._claim_by = self._window_end()
        opened = shifted(self._claim_by, -policy.days(policy.mdf.claim_window_days))
        for offset in sorted(policy.mdf.claim_reminder_days, reverse=True):
            at = shifted(self._claim_by, -policy.days(offset))
            if at < opened:
                continue  # a reminder before the window opened (a window shorter than its offset): none
            if await self._kit.wait_until(
                lambda: self._claim is not None,
                at,
                summary=f"claim reminder ({offset:g} days left)",
                waiting_for="the partner's claim",
            ):
                break
            if self._claim is None and workflow.now() >= at:
                await self._kit.notify(
                    "claim_reminder",
                    ["partner"],
                    step=f"claim_reminder:{offset:g}",
                    days_left=offset,
                    claim_by=self._claim_by.date().isoformat(),
                )
        if self._claim is None and not await self._kit.wait_until(
            lambda: self._claim is not None,
            self._claim_by,
            summary="the claim window closes",
            waiting_for="the partner's claim",
        ):
            return False
        self._claim_rounds = 1
        return True

    async def _await_proof(self) -> bool:
        policy = self._kit.policy
        assert policy is not None and self._claim_by is not None
        returned_at = workflow.now()
        await self._record(
            MdfState.claim_returned,
            by=self._decisions[-1].by,
            step=f"claim_returned:{self._claim_rounds}",
            reason=self._last_reason(),
        )
        self._settled += 1
        await self._kit.notify(
            "claim_returned", ["partner"], step=f"claim_returned:{self._claim_rounds}", reason=self._last_reason()
        )
        if policy.mdf.pause_window_when_returned:
            await self._kit.wait_for(lambda: self._proof_added, waiting_for="the partner's proof (window paused)")
            self._claim_by += workflow.now() - returned_at
        elif not await self._kit.wait_until(
            lambda: self._proof_added,
            self._claim_by,
            summary="the claim window closes",
            waiting_for="the partner's proof",
        ):
            return False
        self._proof_added = False
        self._claim_rounds += 1
        return True

    async def _claim_approved_step(self) -> None:
        assert self._approved_claim is not None
        last = self._decisions[-1]
        await self._reserve_or_fail(self._approved_claim, "claim_approved", last.by)
        await self._record(
            MdfState.claim_approved,
            by=last.by,
            step="claim_approved",
            reason=last.reason,
            approved_claim_minor=self._approved_claim,
            memo_claim_minor=self._approved_claim,
        )
        self._settled += 1
        await self._kit.notify("claim_approved", ["partner"] + (["cam"] if self._kit.has_cam() else []))

    async def _await_payment(self) -> None:
        policy = self._kit.policy
        assert policy is not None and self._approved_claim is not None
        approved = self._approved_claim
        day = policy.mdf.payment_cutoff_day
        if day is not None:
            cutoff = next_cutoff(workflow.now(), day, policy.mdf.time_zone)
            if not await self._kit.wait_until(
                lambda: self._paid >= approved,
                cutoff,
                summary="payment cut-off",
                waiting_for="ops to record the payment",
            ):
                await self._record(
                    MdfState.due_for_payment,
                    by=actors.SYSTEM,
                    step="due_for_payment",
                    reason=f"payment cut-off on day {day}",
                )
                await self._kit.notify("due_for_payment", ["ops"])
        await self._kit.wait_for(lambda: self._paid >= approved, waiting_for="ops to record the payment in full")
        await self._reserve_or_fail(0, "paid", actors.SYSTEM)  # the reservation's remainder, if any
        await self._record(
            MdfState.paid,
            by=self._payments[-1].by,
            step="paid",
            reason=f"paid {money(self._paid, self._inp.currency)} in {len(self._payments)} payment(s)",
        )
        self._paid_recorded = True
        await self._kit.notify("paid", ["partner"] + (["cam"] if self._kit.has_cam() else []))

    async def _close(self, state: MdfState, reason: str, *, by: str = actors.SYSTEM) -> MdfResult:
        """An end before payment: every reserved unit is released, the partner (and the CAM) told."""
        await self._reserve_or_fail(0, f"closed:{state.value}", by)
        await self._record(state, by=by, step=state.value, reason=reason)
        self._settled += 1
        await self._kit.notify(state.value, ["partner"] + (["cam"] if self._kit.has_cam() else []), reason=reason)
        return await self._finish()

    async def _finish(self) -> MdfResult:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return MdfResult(request_id=self._inp.request_id, state=self._state, paid_minor=self._paid)

    # ------------------------------------------------------------------ helpers

    async def _reserve(self, target: int, step: str, by: str) -> ReserveResult:
        got = await self._kit.write(  # local since the kit's generation 7
            MdfActivity.RESERVE,
            ReserveInput(
                idempotency_key=self._kit.key(step), request_id=self._inp.request_id, target_minor=target, by=by
            ),
            ReserveResult,
            summary=f"hold {money(target, self._inp.currency)} for the request in the fund",
            since=7,
        )
        if got.ok:
            self._reserved = got.reserved_minor
        return got

    async def _reserve_or_fail(self, target: int, step: str, by: str) -> None:
        """Lowering a reservation always succeeds."""
        got = await self._reserve(target, step, by)
        assert got.ok or target > self._reserved, "a release cannot be refused"

    async def _record(self, state: MdfState, *, by: str, step: str, reason: str | None = None, **values: Any) -> None:
        """A state change: recorded, and published to webhook subscribers when it is in the catalog."""
        self._state = state
        await self._kit.record_state(
            state.value,
            MdfActivity.RECORD_STATE,
            MdfStateInput(
                idempotency_key=self._kit.key(step),
                request_id=self._inp.request_id,
                state=state,
                by=by,
                reason=reason,
                at=workflow.now(),
                **values,
            ),
            by=by,
        )
        if state in PUBLISHED and step == state.value:  # the step that takes the state (not a date change)
            # Each such state's email comes next (`_approved_step`, `_claim_approved_step`, paid, `_close`).
            await self._kit.emit(f"mdf.{state.value}", self._event(by, reason), email_follows=True)

    def _event(self, by: str | None, reason: str | None = None) -> MdfEvent:
        return MdfEvent(
            request_id=self._inp.request_id,
            partner_id=self._inp.partner_id,
            state=self._state.value,
            activity_type=self._inp.activity_type,
            title=self._title,
            period=self._inp.period,
            currency=self._inp.currency,
            amount_minor=self._amount,
            approved_minor=self._approved,
            claim_minor=self._claim.amount_minor if self._claim else None,
            approved_claim_minor=self._approved_claim,
            paid_minor=self._paid,
            by=by,
            reason=reason,
        )

    def _log(self, stage: str, level: str, decision: Decision, amount: int | None, by: str, reason: str) -> None:
        self._decisions.append(
            LevelDecision(
                stage=stage,
                level=level,
                decision=decision,
                amount_minor=amount,
                by=by,
                reason=reason,
                at=workflow.now(),
            )
        )

    def _last_reason(self) -> str:
        return self._decisions[-1].reason if self._decisions else ""

    def _round(self, stage: str) -> int:
        return self._rounds if stage == REQUEST else self._claim_rounds

    def _answer(self) -> MdfAnswer:
        level = self._levels[self._level].name if self._level is not None and self._levels else None
        return MdfAnswer(
            request_id=self._inp.request_id,
            state=self._state,
            level=level,
            approved_minor=self._approved,
            claim_minor=self._claim.amount_minor if self._claim else None,
            paid_minor=self._paid,
            reserved_minor=self._reserved,
        )

    def _context(self) -> dict[str, Any]:
        cur = self._inp.currency
        return {
            "partner_name": self._inp.partner_name,
            "request_id": self._inp.request_id,
            "title": self._title,
            "activity_type": self._inp.activity_type,
            "amount": money(self._amount, cur),
            "approved": money(self._approved, cur) if self._approved is not None else None,
            "claim": money(self._claim.amount_minor, cur) if self._claim else None,
            "approved_claim": money(self._approved_claim, cur) if self._approved_claim is not None else None,
            "paid": money(self._paid, cur),
            "planned_start": self._start.isoformat(),
            "planned_end": self._end.isoformat(),
            "state": self._state.value,
            "period": self._inp.period,
            "start_by": self._start_by.date().isoformat() if self._start_by else None,
            "claim_by": self._claim_by.date().isoformat() if self._claim_by else None,
        }

    def _is_cam(self, by: str) -> bool:
        return self._kit.coverage.cam_id is not None and by == actors.cam(self._kit.coverage.cam_id)

    def _check_partner_side(self, by: str) -> None:
        if actors.is_ops(by) or by == actors.partner(self._inp.partner_id) or self._is_cam(by):
            return
        raise ApplicationError(
            f"{by} may not change this request: only the partner, its CAM or ops", type=Refusal.NOT_APPROVER
        )

    def _check_dates(self, start: date, end: date) -> None:
        policy = self._kit.policy
        assert policy is not None
        rules = policy.mdf
        self._kit.check_horizon("planned_start", start)
        self._kit.check_horizon("planned_end", end)
        if end < start:
            raise ApplicationError("planned_end: the activity cannot end before it starts", type=Refusal.INVALID)
        if days_between(start, end) > rules.max_activity_days:
            raise ApplicationError(
                f"planned_end: an activity lasts at most {rules.max_activity_days:g} days", type=Refusal.INVALID
            )
        if self._start_by is not None and start > self._start_by.date():
            raise ApplicationError(
                f"planned_start: the approval is valid for activities starting by {self._start_by.date()}",
                type=Refusal.INVALID,
            )
