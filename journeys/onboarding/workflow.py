"""The 90-day onboarding journey: `onboarding-{partner_id}`.

Milestones get due dates from the program policy. An overdue required milestone nudges the
partner (the CAM is copied for tiers that want every alert); past the policy's escalation
delay the CAM is alerted (tiers without a CAM email no CAM). When every required milestone is
done the partner is `active`; at the end of the plan an incomplete partner is `at_risk`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.journeys import CHANGE_COVERAGE, PROGRESS, Coverage, Refusal, StepResult
    from journeys.onboarding.domain import (
        JOURNEY,
        LEGACY_ACTIVITY_NAMES,
        MARK_MILESTONE,
        REPORT_MILESTONE,
        FinishOnboardingInput,
        FinishOnboardingNotice,
        MilestoneDone,
        MilestoneProgress,
        MilestoneReport,
        OnboardingActivity,
        OnboardingInput,
        OnboardingProgress,
        OnboardingResult,
        OnboardingState,
        OpenPlanInput,
        RecordMilestoneInput,
    )
    from journeys.onboarding.events import PartnerEvent
    from workflows.kit import JourneyKit


@workflow.defn
class OnboardingWorkflow:
    @workflow.init
    def __init__(self, inp: OnboardingInput) -> None:
        self._kit = JourneyKit(
            JOURNEY,
            inp.partner_id,
            inp.coverage,
            LEGACY_ACTIVITY_NAMES,
            context=lambda: {"partner_name": self._name},
        )
        self._partner_id = inp.partner_id
        self._name = inp.partner_name
        self._coverage_changed = False
        self._inbox: list[MilestoneDone] = []
        self._recorded: set[str] = set()
        self._state = OnboardingState.in_progress
        self._milestones: dict[str, MilestoneProgress] = {}
        self._started_at = workflow.now()
        self._ends_at = self._started_at
        self._reports = 0  # milestone reports taken by the update (repeats included)

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=MARK_MILESTONE)
    def mark_milestone(self, done: MilestoneDone) -> None:
        """A fact from another journey (e.g. the first deal); unknown keys and repeats are ignored."""
        self._inbox.append(done)

    @workflow.update(name=REPORT_MILESTONE)
    async def report_milestone(self, done: MilestoneDone) -> MilestoneReport:
        """A report through the API: answered once the milestone is recorded in the DB."""
        self._reports += 1
        await workflow.wait_condition(lambda: bool(self._milestones) or self._state != OnboardingState.in_progress)
        self._check_report(done)
        if self._milestones[done.key].done_at is not None:
            return MilestoneReport(partner_id=self._partner_id, milestone=done.key, accepted=True, already_done=True)
        self._inbox.append(done)
        await workflow.wait_condition(lambda: done.key in self._recorded or self._state != OnboardingState.in_progress)
        if done.key not in self._recorded:
            raise ApplicationError(
                f"the onboarding journey ended ({self._state.value}) before {done.key} was recorded",
                type=Refusal.NOT_PENDING,
            )
        return MilestoneReport(partner_id=self._partner_id, milestone=done.key, accepted=True, already_done=False)

    @report_milestone.validator
    def _validate_report(self, done: MilestoneDone) -> None:
        self._kit.check_count(self._reports, self._kit.limits.max_milestone_reports, "milestone reports")
        self._check_report(done)

    def _check_report(self, done: MilestoneDone) -> None:
        if self._state != OnboardingState.in_progress:
            m = self._milestones.get(done.key)
            if m is not None and m.done_at is not None:
                return  # a repeat after the end is still harmless
            raise ApplicationError(
                f"the onboarding journey has ended ({self._state.value}); milestones can no longer be reported",
                type=Refusal.NOT_PENDING,
            )
        if self._milestones and done.key not in self._milestones:
            raise ApplicationError(
                f"no milestone {done.key!r} in this partner's plan (known: {', '.join(self._milestones)})",
                type=Refusal.UNKNOWN_KEY,
            )

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.coverage = coverage
        self._apply_required()  # at once, so a query right after the signal sees the new plan
        self._coverage_changed = True  # search attributes: upserted by the main loop

    @workflow.query(name=PROGRESS)
    def progress(self) -> OnboardingProgress:
        return OnboardingProgress(
            partner_id=self._partner_id,
            state=self._state,
            tier=self._kit.coverage.tier,
            cam_id=self._kit.coverage.cam_id,
            policy_version=self._kit.policy_version,
            started_at=self._started_at,
            ends_at=self._ends_at,
            milestones=list(self._milestones.values()),
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        policy = await self._kit.load_policy(inp.policy_version)
        self._started_at = workflow.now()
        self._ends_at = self._started_at + policy.days(policy.onboarding.plan_days)
        plan = {}
        for spec in policy.onboarding.milestones:
            plan[spec.key] = MilestoneProgress(
                key=spec.key,
                title=spec.title,
                required=self._kit.coverage.tier in spec.required_for,
                due_at=self._started_at + policy.days(spec.due_day),
            )
        self._milestones = plan
        self._kit.upsert(self._state.value)
        await self._kit.write(  # local since the kit's generation 6
            OnboardingActivity.OPEN_PLAN,
            OpenPlanInput(
                idempotency_key=self._kit.key("plan"),
                partner_id=self._partner_id,
                policy_version=self._kit.policy_version,
                milestones=list(self._milestones.values()),
            ),
            StepResult,
            summary=f"write the {len(self._milestones)}-milestone activation plan",
            since=6,
        )
        enrolled = self._kit.event("partner.enrolled", self._event())
        await self._kit.notify("welcome", ["partner"], events=[enrolled], **self._plan_context())

        while True:
            await self._apply_messages()
            if all(m.done_at for m in self._milestones.values() if m.required):
                await self._finish(OnboardingState.activated)
                break
            now = workflow.now()
            if now >= self._ends_at:
                await self._finish(OnboardingState.at_risk)
                break
            await self._send_due_alerts(now)
            deadline, what = self._next_deadline()
            await self._kit.wait_until(
                lambda: bool(self._inbox) or self._coverage_changed,
                deadline,
                summary=what,
                waiting_for="the partner's milestones",
            )

        await workflow.wait_condition(workflow.all_handlers_finished)
        return OnboardingResult(
            partner_id=self._partner_id,
            state=self._state,
            completed=[k for k, m in self._milestones.items() if m.done_at],
            missing=[k for k, m in self._milestones.items() if m.required and not m.done_at],
        )

    # ------------------------------------------------------------------ steps

    async def _apply_messages(self) -> None:
        if self._coverage_changed:
            self._coverage_changed = False
            self._apply_required()
            self._kit.upsert(self._state.value)
        while self._inbox:
            done = self._inbox.pop(0)
            m = self._milestones.get(done.key)
            if m is None or m.done_at is not None:
                continue  # unknown or already done: a repeated fact changes nothing
            m.done_at = workflow.now()
            m.done_by = done.by
            await self._kit.write(  # local since the kit's generation 6
                OnboardingActivity.RECORD_MILESTONE,
                RecordMilestoneInput(
                    idempotency_key=self._kit.key(f"milestone:{m.key}"),
                    partner_id=self._partner_id,
                    key=m.key,
                    by=done.by,
                    at=m.done_at,
                ),
                StepResult,
                summary=f"record milestone {m.key} (by {done.by})",
                since=6,
            )
            self._recorded.add(m.key)

    async def _send_due_alerts(self, now: datetime) -> None:
        policy = self._kit.policy
        assert policy is not None
        rules = policy.tiers[self._kit.coverage.tier]
        has_cam = self._kit.has_cam()
        escalation = policy.days(policy.onboarding.escalation_days)
        for m in self._milestones.values():
            if not m.required or m.done_at is not None:
                continue
            if not m.nudged and now >= m.due_at:
                m.nudged = True
                to = ["partner"] + (["cam"] if has_cam and rules.cam_on_every_alert else [])
                await self._kit.notify("nudge", to, step=f"nudge:{m.key}", **self._milestone_context(m))
            if not m.escalated and now >= m.due_at + escalation:
                m.escalated = True
                if has_cam:  # tiers without a CAM email no CAM: the partner nudge stands
                    await self._kit.notify(
                        "escalation", ["cam"], step=f"escalation:{m.key}", **self._milestone_context(m)
                    )

    def _apply_required(self) -> None:
        """Which milestones are required depends on the tier."""
        if self._kit.policy is None:
            return  # the plan is built from the coverage when the policy is read
        for spec in self._kit.policy.onboarding.milestones:
            self._milestones[spec.key].required = self._kit.coverage.tier in spec.required_for

    def _next_deadline(self) -> tuple[datetime, str]:
        """When the journey acts next by itself, and what it will do then."""
        assert self._kit.policy is not None
        escalation = self._kit.policy.days(self._kit.policy.onboarding.escalation_days)
        deadlines = [(self._ends_at, "the activation plan ends")]
        for m in self._milestones.values():
            if not m.required or m.done_at is not None:
                continue
            if not m.nudged:
                deadlines.append((m.due_at, f"{m.key} due: nudge the partner"))
            elif not m.escalated:
                deadlines.append((m.due_at + escalation, f"{m.key} overdue: alert the CAM"))
        return min(deadlines, key=lambda d: d[0])

    async def _finish(self, state: OnboardingState) -> None:
        """The outcome (the partner's status) and the email that tells it with its event: one step
        since the kit's generation 12 (`record_and_notify`, unless an update waits for its answer),
        the record then the email before."""
        self._state = state
        record = FinishOnboardingInput(
            idempotency_key=self._kit.key(state.value), partner_id=self._partner_id, state=state, at=workflow.now()
        )
        if self._kit.tells_with_state():
            template, to, context = self._outcome_email(state)
            await self._kit.record_and_notify(
                state.value,
                OnboardingActivity.FINISH_AND_NOTIFY,
                lambda notice: FinishOnboardingNotice(record=record, notice=notice),
                template,
                to,
                events=[self._kit.event(f"partner.{state.value}", self._event())],
                **context,
            )
            return
        await self._kit.record_state(state.value, OnboardingActivity.FINISH, record)  # the partner's status
        template, to, context = self._outcome_email(state)  # the coverage as it is once recorded
        events = [self._kit.event(f"partner.{state.value}", self._event())]
        await self._kit.notify(template, to, events=events, **context)

    def _outcome_email(self, state: OnboardingState) -> tuple[str, list[str], dict[str, Any]]:
        """The outcome's email: its template, recipients and context."""
        has_cam = self._kit.has_cam()
        if state == OnboardingState.activated:
            return "activated", ["partner"] + (["cam"] if has_cam else []), {}
        missing = [m.title for m in self._milestones.values() if m.required and not m.done_at]
        return "at_risk", ["partner", "cam" if has_cam else "ops"], {"missing": missing}

    def _event(self) -> PartnerEvent:
        return PartnerEvent(
            partner_id=self._partner_id,
            partner_name=self._name,
            tier=self._kit.coverage.tier.value,
            cam_id=self._kit.coverage.cam_id,
            state=self._state.value,
        )

    # ------------------------------------------------------------------ helpers

    def _plan_context(self) -> dict[str, Any]:
        policy = self._kit.policy
        return {
            "plan_days": policy.onboarding.plan_days if policy else 0,
            "milestones": [
                {"title": m.title, "due": m.due_at.date().isoformat(), "required": m.required}
                for m in self._milestones.values()
            ],
        }

    def _milestone_context(self, m: MilestoneProgress) -> dict[str, Any]:
        return {"milestone": m.title, "milestone_key": m.key, "due": m.due_at.date().isoformat()}
