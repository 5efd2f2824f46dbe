"""Deal registration: `deal-{deal_id}`.

Auto-approval inside the tier's policy, otherwise a decision by the partner's CAM (ops for
partners without one) through the `decide` update, with an SLA reminder and an escalation to
ops. An approved deal is protected for the policy's window: reminders before expiry, bounded
extensions (CAM tiers need the CAM's approval), stage changes, a stall alert, close won/lost,
and expiry, which releases the protection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import actors
    from domain.journeys import CHANGE_COVERAGE, PROGRESS, Coverage, NotifyResult, Refusal, StepResult
    from journeys.deal.domain import (
        AWAITING_DECISION,
        CHANGE_STAGE,
        DECIDE,
        DECIDE_EXTENSION,
        JOURNEY,
        LEGACY_ACTIVITY_NAMES,
        REQUEST_EXTENSION,
        ApprovalRequestInput,
        DealActivity,
        DealCarried,
        DealDecision,
        DealInput,
        DealProgress,
        DealResult,
        DealStage,
        DealStageInput,
        DealState,
        DealStateInput,
        DealStateNotice,
        Decision,
        DecisionResult,
        ExtensionDecision,
        ExtensionRequest,
        ExtensionResult,
        StageChange,
    )
    from journeys.deal.events import DealEvent
    from journeys.onboarding.contract import FIRST_DEAL, milestone_done
    from workflows.kit import JourneyKit

CLOSING = {DealStage.closed_won: DealState.won, DealStage.closed_lost: DealState.lost}
EXTENSION_RECORDED_PATCH = "deal-extension-answer-after-record"
CONTINUE_AS_NEW_PATCH = "deal-continue-as-new"  # a long protection phase goes on in a new run


@workflow.defn
class DealWorkflow:
    @workflow.init
    def __init__(self, inp: DealInput) -> None:
        self._kit = JourneyKit(JOURNEY, inp.partner_id, inp.coverage, LEGACY_ACTIVITY_NAMES, context=self._context)
        self._inp = inp
        self._state = inp.state
        self._stage = inp.stage
        self._decision: DealDecision | None = None
        self._decision_recorded = False
        self._submitted_at = workflow.now()
        self._stage_since = workflow.now()
        self._stage_changes = 0
        self._stage_inbox: list[StageChange] = []
        self._stalled = False
        self._protected_until: datetime | None = None
        self._extensions = 0
        self._pending_extension: ExtensionRequest | None = None
        self._granted: list[tuple[int, float, str]] = []  # (number, days, by): to record and announce
        self._rejected_extension: str | None = None
        self._requests = 0
        self._to_announce: list[ExtensionRequest] = []  # extension requests the CAM must hear of
        self._announced = 0  # extension requests the CAM was told of (queued in the outbox)
        self._extensions_recorded = 0  # granted extensions recorded in the DB
        self._reminded: set[tuple[int, float]] = set()  # expiry reminders sent (carried into a continued run)
        if inp.carried is not None:  # a continued run: restored before any message is taken
            self._restore(inp.carried)
            # Its policy version is known from the input: progress answers it before the policy
            # loads (a query, not a command: replay is unaffected).
            self._kit.policy_version = inp.policy_version or 0

    # ------------------------------------------------------------------ messages

    @workflow.update(name=DECIDE)
    async def decide(self, decision: DealDecision) -> DecisionResult:
        self._decision = decision
        if self._kit.patched("deal-decision-answer-after-record"):
            # Answer once the decision is in the DB, so a read right after the answer sees it.
            await workflow.wait_condition(lambda: self._decision_recorded)
        else:  # journeys recorded before the patch answered as soon as the state changed
            await workflow.wait_condition(lambda: self._state not in AWAITING_DECISION)
        return DecisionResult(
            deal_id=self._inp.deal_id, state=self._state, decided_by=decision.by, protected_until=self._protected_until
        )

    @decide.validator
    def _validate_decide(self, decision: DealDecision) -> None:
        if self._state not in AWAITING_DECISION or self._decision is not None:
            raise ApplicationError(
                f"deal {self._inp.deal_id} is {self._state.value}: it is no longer pending a decision",
                type=Refusal.NOT_PENDING,
            )
        self._check_approver(decision.by)

    @workflow.update(name=REQUEST_EXTENSION)
    async def request_extension(self, req: ExtensionRequest) -> ExtensionResult:
        if self._cam_decides():
            self._pending_extension = req
            self._to_announce.append(req)
            await self._recorded(lambda: self._announced >= self._requests + len(self._to_announce))
            return ExtensionResult(
                status="awaiting_cam", extensions_used=self._extensions, protected_until=self._protected_until
            )
        self._grant(req.days, req.by)
        await self._recorded(lambda n=self._extensions: self._extensions_recorded >= n)  # type: ignore[misc]
        return ExtensionResult(
            status="granted", extensions_used=self._extensions, protected_until=self._protected_until
        )

    @request_extension.validator
    def _validate_extension(self, req: ExtensionRequest) -> None:
        if self._state != DealState.approved or self._kit.policy is None:
            raise ApplicationError(
                f"deal is {self._state.value}: only an approved deal can be extended", type=Refusal.NOT_PENDING
            )
        rules = self._kit.policy.deal
        if not (actors.is_ops(req.by) or req.by == actors.partner(self._inp.partner_id) or self._is_cam(req.by)):
            raise ApplicationError(f"{req.by} may not extend this deal", type=Refusal.NOT_APPROVER)
        if self._pending_extension is not None:
            raise ApplicationError("an extension request is already waiting for the CAM", type=Refusal.NOT_PENDING)
        if self._extensions >= rules.max_extensions:
            raise ApplicationError(
                f"the policy allows {rules.max_extensions} extension(s); all are used", type=Refusal.LIMIT_REACHED
            )
        if req.days > rules.max_extension_days:
            raise ApplicationError(
                f"days: an extension may be at most {rules.max_extension_days:g} days", type=Refusal.LIMIT_REACHED
            )

    @workflow.update(name=DECIDE_EXTENSION)
    async def decide_extension(self, decision: ExtensionDecision) -> ExtensionResult:
        req = self._pending_extension
        assert req is not None
        self._pending_extension = None
        if decision.decision == Decision.approve:
            self._grant(req.days, decision.by)
            status = "granted"
            await self._recorded(lambda n=self._extensions: self._extensions_recorded >= n)  # type: ignore[misc]
        else:
            self._rejected_extension = decision.reason or "no reason given"
            status = "rejected"
            await self._recorded(lambda: self._rejected_extension is None)
        return ExtensionResult(status=status, extensions_used=self._extensions, protected_until=self._protected_until)

    @decide_extension.validator
    def _validate_extension_decision(self, decision: ExtensionDecision) -> None:
        if self._pending_extension is None or self._state != DealState.approved:
            raise ApplicationError("no extension request is waiting for a decision", type=Refusal.NOT_PENDING)
        self._check_approver(decision.by)

    @workflow.signal(name=CHANGE_STAGE)
    def change_stage(self, change: StageChange) -> None:
        self._stage_inbox.append(change)

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.apply_coverage(coverage, self._state.value)

    @workflow.query(name=PROGRESS)
    def progress(self) -> DealProgress:
        return DealProgress(
            deal_id=self._inp.deal_id,
            partner_id=self._inp.partner_id,
            state=self._state,
            stage=self._stage,
            policy_version=self._kit.policy_version,
            submitted_at=self._submitted_at,
            decided_by=self._decision.by if self._decision else None,
            decision_reason=self._decision.reason if self._decision else None,
            protected_until=self._protected_until,
            extensions_used=self._extensions,
            pending_extension_days=self._pending_extension.days if self._pending_extension else None,
            stage_since=self._stage_since,
            stalled=self._stalled,
            stage_changes_left=max(
                self._kit.limits.max_stage_changes - self._stage_changes - len(self._stage_inbox), 0
            ),
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: DealInput) -> DealResult:
        policy = await self._kit.load_policy(inp.policy_version)
        self._kit.upsert(self._state.value)
        if inp.carried is not None:  # a continued run (restored in __init__): the protection goes on
            await self._protect()
            return await self._end()
        await self._kit.tell(*milestone_done(inp.partner_id, FIRST_DEAL, self._kit.actor), wait=False)
        automatic = self._automatic()  # decided at once: the approval email follows without a wait
        await self._kit.emit("deal.registered", self._event(by=None), email_follows=automatic is not None)

        await self._await_decision()
        assert self._decision is not None  # _await_decision returns only once there is one
        approved = self._decision is not None and self._decision.decision == Decision.approve
        now = workflow.now()
        if approved:
            rules = policy.deal.tiers[self._kit.coverage.tier]
            self._protected_until = now + policy.days(rules.protection_days)
        decision = self._decision

        def recorded() -> None:
            self._decision_recorded = True
            self._kit.decided(self._state.value, decision.by, self._submitted_at)

        if not approved:
            await self._tell_state(
                DealState.rejected,
                lambda: ["partner"],
                by=decision.by,
                step="decision",
                reason=decision.reason,
                recorded=recorded,
                context={"reason": decision.reason},
            )
            return await self._end()
        await self._tell_state(
            DealState.approved,
            lambda: ["partner"] + (["cam"] if self._cam_decides() else []),
            by=decision.by,
            step="decision",
            reason=decision.reason,
            recorded=recorded,
        )
        await self._protect()
        return await self._end()

    # ------------------------------------------------------------------ approval

    def _automatic(self) -> DealDecision | None:
        """The approval of a deal inside its tier's auto-approval policy; None when a human decides."""
        policy = self._kit.policy
        assert policy is not None
        rules = policy.deal
        tier_rules = rules.tiers[self._kit.coverage.tier]
        if (
            self._state == DealState.pending_approval
            and tier_rules.auto_approve
            and not self._inp.hold_reason
            and self._inp.currency == rules.currency
            and self._inp.amount_minor <= tier_rules.auto_approve_max_minor
        ):
            return DealDecision(
                decision=Decision.approve,
                by=actors.SYSTEM,
                reason=f"inside the {self._kit.coverage.tier.value} policy: no conflict, amount within "
                f"{tier_rules.auto_approve_max_minor / 100:,.2f} {rules.currency}",
            )
        return None

    async def _await_decision(self) -> None:
        policy = self._kit.policy
        assert policy is not None
        rules = policy.deal
        automatic = self._automatic()
        if automatic is not None:
            self._decision = automatic
            return
        approver = "cam" if self._kit.coverage.cam_id else "ops"
        await self._request_decision("approval_request", approver)
        sla = policy.days(rules.approval_sla_days)
        who = "the CAM's decision" if approver == "cam" else "ops' decision"
        if await self._kit.wait(
            lambda: self._decision is not None, sla, summary=f"approval SLA: remind {approver}", waiting_for=who
        ):
            return
        await self._request_decision("approval_reminder", approver)
        if await self._kit.wait(
            lambda: self._decision is not None,
            policy.days(rules.escalation_days) - sla,
            summary="escalation: ask ops to decide",
            waiting_for=who,
        ):
            return
        await self._request_decision("approval_escalation", "ops")
        await self._kit.wait_for(lambda: self._decision is not None, waiting_for=f"{who} (escalated to ops)")

    async def _request_decision(self, template: str, approver: str) -> None:
        policy = self._kit.policy
        assert policy is not None
        key = self._kit.key(f"notify:{template}")
        await self._kit.queue_and_send(
            DealActivity.QUEUE_APPROVAL_REQUEST,
            ApprovalRequestInput(
                idempotency_key=key,
                deal_id=self._inp.deal_id,
                approver=approver,
                template=template,
                context=self._context(),
                link_valid_until=workflow.now() + policy.days(policy.deal.decision_link_days),
            ),
            NotifyResult,
            key,
            summary=f"queue the {template.replace('_', ' ')} with one-click links to {approver}",
            send_summary=f"email the {template.replace('_', ' ')} to {approver}",
        )

    # ------------------------------------------------------------------ protection window

    async def _protect(self) -> None:
        policy = self._kit.policy
        assert policy is not None and self._protected_until is not None
        rules = policy.deal
        reminded: set[tuple[int, float]] = set(self._reminded)
        while True:
            while self._stage_inbox:
                change = self._stage_inbox.pop(0)
                if change.stage == self._stage:
                    continue
                if self._stage_changes >= self._kit.limits.max_stage_changes:
                    workflow.logger.warning(
                        "stage change by %s ignored: the policy allows %d per deal",
                        change.by,
                        self._kit.limits.max_stage_changes,
                        extra=self._kit.log_extra,
                    )
                    continue
                if not self._may_change_stage(change.by):
                    workflow.logger.warning(
                        "stage change by %s ignored: not the partner, its CAM or ops",
                        change.by,
                        extra=self._kit.log_extra,
                    )
                    continue
                self._stage, self._stage_since, self._stalled = change.stage, workflow.now(), False
                self._stage_changes += 1
                stage = DealStageInput(
                    idempotency_key=self._kit.key(f"stage:{self._stage_changes}"),
                    deal_id=self._inp.deal_id,
                    stage=change.stage,
                    by=change.by,
                    at=workflow.now(),
                )
                closing = change.stage in CLOSING and self._kit.lean  # the stage and the state in one step
                if not closing:
                    await self._kit.write(  # local since the kit's generation 7
                        DealActivity.RECORD_STAGE,
                        stage,
                        StepResult,
                        summary=f"record the stage {change.stage.value} (by {change.by})",
                        since=7,
                    )
                if change.stage in CLOSING:
                    await self._tell_state(
                        CLOSING[change.stage],
                        self._partner_and_cam,
                        by=change.by,
                        step="closed",
                        stage=stage if closing else None,
                    )
                    return
            while self._to_announce:
                req = self._to_announce.pop(0)
                self._requests += 1
                await self._kit.notify(
                    "extension_request",
                    ["cam"],
                    step=f"extension_request:{self._requests}",
                    days=req.days,
                    reason=req.reason,
                )
                self._announced = self._requests
            while self._granted:
                number, days, by = self._granted.pop(0)
                await self._set_state(
                    DealState.approved, by=by, step=f"extension:{number}", reason=f"extended by {days:g} days"
                )
                self._extensions_recorded = number
                extended = self._kit.event(
                    "deal.extended", self._event(by, f"extended by {days:g} days"), step=f"extended:{number}"
                )
                await self._kit.notify(
                    "extension_granted", ["partner"], step=f"extension:{number}", days=days, events=[extended]
                )
            if self._rejected_extension is not None:
                await self._kit.notify(
                    "extension_rejected",
                    ["partner"],
                    step=f"extension_rejected:{self._extensions}",
                    reason=self._rejected_extension,
                )
                self._rejected_extension = None

            now = workflow.now()
            if now >= self._protected_until:
                await self._tell_state(
                    DealState.expired,
                    self._partner_and_cam,
                    by=actors.SYSTEM,
                    step="expired",
                    reason="protection window ended",
                )
                return
            deadlines = [self._protected_until]
            for offset in sorted(rules.expiry_reminder_days, reverse=True):
                at = self._protected_until - policy.days(offset)
                mark = (self._extensions, offset)
                if mark in reminded:
                    continue
                if now >= at:
                    reminded.add(mark)
                    expiring = self._kit.event(
                        "deal.expiring",
                        self._event(actors.SYSTEM, days_left=offset),
                        step=f"expiring:{self._extensions}:{offset:g}",
                    )
                    await self._kit.notify(
                        "expiry_reminder",
                        ["partner"] + (["cam"] if self._cam_decides() else []),
                        step=f"expiry_reminder:{self._extensions}:{offset:g}",
                        days_left=offset,
                        events=[expiring],
                    )
                else:
                    deadlines.append(at)
            stall_at = self._stage_since + policy.days(rules.stall_days)
            if not self._stalled:
                if now >= stall_at:
                    self._stalled = True
                    await self._kit.notify(
                        "stalled",
                        ["cam" if self._kit.coverage.cam_id else "ops"],
                        step=f"stalled:{self._stage_changes}",
                        stage=self._stage.value,
                    )
                else:
                    deadlines.append(stall_at)
            nxt = min(deadlines)
            if nxt == self._protected_until:
                what = "protection ends"
            elif nxt == stall_at and not self._stalled:
                what = "stall alert: the stage has not moved"
            else:
                what = "protection expiry reminder"
            if self._kit.history_full() and self._kit.patched(CONTINUE_AS_NEW_PATCH):
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() or not self._idle())
                if self._idle():
                    workflow.continue_as_new(self._carry(reminded))
                continue
            await self._kit.wait_until(
                lambda: not self._idle(),
                nxt,
                summary=what,
                waiting_for="stage changes, extensions or the end of protection",
            )

    def _idle(self) -> bool:
        """Nothing a message brought waits for the protection loop."""
        return not (self._stage_inbox or self._granted or self._rejected_extension or self._to_announce)

    def _carry(self, reminded: set[tuple[int, float]]) -> DealInput:
        assert self._decision is not None and self._protected_until is not None
        carried = DealCarried(
            decision=self._decision,
            submitted_at=self._submitted_at,
            stage_since=self._stage_since,
            stage_changes=self._stage_changes,
            stalled=self._stalled,
            protected_until=self._protected_until,
            extensions=self._extensions,
            pending_extension=self._pending_extension,
            requests=self._requests,
            reminded=sorted(reminded),
            runs=(self._inp.carried.runs + 1) if self._inp.carried else 1,
        )
        return self._inp.model_copy(
            update={
                "state": self._state,
                "stage": self._stage,
                "coverage": self._kit.coverage,
                "policy_version": self._kit.policy_version,
                "carried": carried,
            }
        )

    def _restore(self, c: DealCarried) -> None:
        self._decision, self._decision_recorded = c.decision, True
        self._submitted_at, self._stage_since, self._stalled = c.submitted_at, c.stage_since, c.stalled
        self._stage_changes, self._protected_until = c.stage_changes, c.protected_until
        self._extensions = self._extensions_recorded = c.extensions
        self._pending_extension = c.pending_extension
        self._requests = self._announced = c.requests
        self._reminded = {(int(n), float(d)) for n, d in c.reminded}

    async def _recorded(self, done: Callable[[], bool]) -> None:
        """An extension update answers once its effect is recorded (the DB row, or the CAM's email
        queued), or the journey left `approved` meanwhile. Journeys recorded before the patch
        answered at once."""
        if self._kit.patched(EXTENSION_RECORDED_PATCH):
            await workflow.wait_condition(lambda: done() or self._state != DealState.approved)

    def _grant(self, days: float, by: str) -> None:
        assert self._kit.policy is not None and self._protected_until is not None
        self._extensions += 1
        self._protected_until += self._kit.policy.days(days)
        self._granted.append((self._extensions, days, by))

    # ------------------------------------------------------------------ helpers

    async def _end(self) -> DealResult:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DealResult(deal_id=self._inp.deal_id, state=self._state, stage=self._stage)

    async def _set_state(
        self, state: DealState, *, by: str, step: str, reason: str | None = None, stage: DealStageInput | None = None
    ) -> None:
        self._state = state
        record = self._state_input(by=by, step=step, reason=reason, stage=stage)
        await self._kit.record_state(state.value, DealActivity.RECORD_STATE, record, by=by)

    async def _tell_state(
        self,
        state: DealState,
        recipients: Callable[[], list[str]],
        *,
        by: str,
        step: str,
        reason: str | None = None,
        stage: DealStageInput | None = None,
        recorded: Callable[[], None] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """A state change, its event `deal.<state>` and the email (template `<state>`) that tells
        both: one step since the kit's generation 12 (`record_and_notify`, unless an update waits
        for its answer); before, the record, the event held for the email and the email, the
        calls the recorded histories have. `recipients` are asked when the email is built (after
        the record, before generation 12); `recorded` runs once the state is in the DB."""
        if not self._kit.tells_with_state():
            await self._set_state(state, by=by, step=step, reason=reason, stage=stage)
            if recorded is not None:
                recorded()
            await self._kit.emit(f"deal.{state.value}", self._event(by, reason), email_follows=True)
            await self._kit.notify(state.value, recipients(), **(context or {}))
            return
        self._state = state
        record = self._state_input(by=by, step=step, reason=reason, stage=stage)
        await self._kit.record_and_notify(
            state.value,
            DealActivity.RECORD_STATE_AND_NOTIFY,
            lambda notice: DealStateNotice(record=record, notice=notice),
            state.value,
            recipients(),
            by=by,
            events=[self._kit.event(f"deal.{state.value}", self._event(by, reason))],
            **(context or {}),
        )
        if recorded is not None:
            recorded()

    def _partner_and_cam(self) -> list[str]:
        return ["partner"] + (["cam"] if self._kit.coverage.cam_id else [])

    def _state_input(self, *, by: str, step: str, reason: str | None, stage: DealStageInput | None) -> DealStateInput:
        """The record of the state the journey just took (`self._state`), keyed `<workflow id>:<step>`."""
        return DealStateInput(
            idempotency_key=self._kit.key(step),
            deal_id=self._inp.deal_id,
            state=self._state,
            by=by,
            reason=reason,
            protected_until=self._protected_until,
            extensions_used=self._extensions,
            at=workflow.now(),
            stage_change=stage,
        )

    def _event(self, by: str | None, reason: str | None = None, days_left: float | None = None) -> DealEvent:
        return DealEvent(
            deal_id=self._inp.deal_id,
            partner_id=self._inp.partner_id,
            state=self._state.value,
            stage=self._stage.value,
            customer_name=self._inp.customer_name,
            product_category=self._inp.product_category,
            amount_minor=self._inp.amount_minor,
            currency=self._inp.currency,
            by=by,
            reason=reason,
            protected_until=self._protected_until,
            days_left=days_left,
        )

    def _context(self) -> dict[str, Any]:
        return {
            "partner_name": self._inp.partner_name,
            "deal_id": self._inp.deal_id,
            "customer_name": self._inp.customer_name,
            "product_category": self._inp.product_category,
            "amount": f"{self._inp.amount_minor / 100:,.2f} {self._inp.currency}",
            "state": self._state.value,
            "stage": self._stage.value,
            "conflict_with": self._inp.conflict_with,
            "hold_reason": self._inp.hold_reason,
            "protected_until": self._protected_until.date().isoformat() if self._protected_until else None,
        }

    def _cam_decides(self) -> bool:
        return self._kit.has_cam()

    def _is_cam(self, by: str) -> bool:
        return self._kit.coverage.cam_id is not None and by == actors.cam(self._kit.coverage.cam_id)

    def _may_change_stage(self, by: str) -> bool:
        return actors.is_ops(by) or by == actors.partner(self._inp.partner_id) or self._is_cam(by)

    def _check_approver(self, by: str) -> None:
        if actors.is_ops(by) or self._is_cam(by):
            return
        raise ApplicationError(
            f"{by} may not decide on this deal: only the partner's CAM or ops may", type=Refusal.NOT_APPROVER
        )
