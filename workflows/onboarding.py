"""The 90-day onboarding journey: `onboarding-{partner_id}`.

Milestones get due dates from the program policy. An overdue required milestone nudges the
partner (the CAM is copied for tiers that want every alert); past the policy's escalation
delay the CAM is alerted (tiers without a CAM email no CAM). When every required milestone is
done the partner is `active`; at the end of the plan an incomplete partner is `at_risk`.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.common import CommonActivities
    from activities.onboarding import OnboardingActivities
    from domain.enums import Journey, OnboardingState
    from domain.journeys import (
        Coverage,
        LoadPolicyInput,
    )
    from domain.onboarding import (
        FinishOnboardingInput,
        MilestoneDone,
        MilestoneProgress,
        OnboardingInput,
        OnboardingProgress,
        OnboardingResult,
        OpenPlanInput,
        RecordMilestoneInput,
    )
    from domain.policy import ProgramPolicy
    from workflows.common import activity_options, notify, upsert_journey_attributes


@workflow.defn
class OnboardingWorkflow:
    @workflow.init
    def __init__(self, inp: OnboardingInput) -> None:
        self._partner_id = inp.partner_id
        self._name = inp.partner_name
        self._coverage = inp.coverage
        self._coverage_changed = False
        self._inbox: list[MilestoneDone] = []
        self._state = OnboardingState.in_progress
        self._milestones: dict[str, MilestoneProgress] = {}
        self._policy: ProgramPolicy | None = None
        self._policy_version = 0
        self._started_at = workflow.now()
        self._ends_at = self._started_at

    # ------------------------------------------------------------------ messages

    @workflow.signal
    def mark_milestone(self, done: MilestoneDone) -> None:
        self._inbox.append(done)

    @workflow.signal
    def change_coverage(self, coverage: Coverage) -> None:
        self._coverage = coverage
        self._apply_required()  # at once, so a query right after the signal sees the new plan
        self._coverage_changed = True

    @workflow.query
    def progress(self) -> OnboardingProgress:
        return OnboardingProgress(
            partner_id=self._partner_id, state=self._state, tier=self._coverage.tier,
            cam_id=self._coverage.cam_id, policy_version=self._policy_version,
            started_at=self._started_at, ends_at=self._ends_at,
            milestones=list(self._milestones.values()),
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        wid = workflow.info().workflow_id
        snap = await workflow.execute_activity_method(
            CommonActivities.load_policy, LoadPolicyInput(version=inp.policy_version), **activity_options()
        )
        policy = self._policy = snap.policy
        self._policy_version = snap.version
        self._started_at = workflow.now()
        self._ends_at = self._started_at + policy.days(policy.onboarding.plan_days)
        for spec in policy.onboarding.milestones:
            self._milestones[spec.key] = MilestoneProgress(
                key=spec.key, title=spec.title, required=self._coverage.tier in spec.required_for,
                due_at=self._started_at + policy.days(spec.due_day),
            )
        self._upsert_search_attributes()
        await workflow.execute_activity_method(
            OnboardingActivities.open_onboarding_plan,
            OpenPlanInput(idempotency_key=f"{wid}:plan", partner_id=self._partner_id,
                          policy_version=snap.version, milestones=list(self._milestones.values())),
            **activity_options(),
        )
        await self._notify("welcome", ["partner"], context=self._plan_context())

        while True:
            await self._apply_messages(wid)
            if all(m.done_at for m in self._milestones.values() if m.required):
                await self._finish(wid, OnboardingState.activated)
                break
            now = workflow.now()
            if now >= self._ends_at:
                await self._finish(wid, OnboardingState.at_risk)
                break
            await self._send_due_alerts(now)
            await self._wait_until(self._next_deadline())

        await workflow.wait_condition(workflow.all_handlers_finished)
        return OnboardingResult(
            partner_id=self._partner_id, state=self._state,
            completed=[k for k, m in self._milestones.items() if m.done_at],
            missing=[k for k, m in self._milestones.items() if m.required and not m.done_at],
        )

    # ------------------------------------------------------------------ steps

    async def _apply_messages(self, wid: str) -> None:
        if self._coverage_changed:
            self._coverage_changed = False
            self._apply_required()
            self._upsert_search_attributes()
        while self._inbox:
            done = self._inbox.pop(0)
            m = self._milestones.get(done.key)
            if m is None or m.done_at is not None:
                continue  # unknown or already done: a repeated fact changes nothing
            m.done_at = workflow.now()
            m.done_by = done.by
            await workflow.execute_activity_method(
                OnboardingActivities.record_milestone,
                RecordMilestoneInput(idempotency_key=f"{wid}:milestone:{m.key}", partner_id=self._partner_id,
                                     key=m.key, by=done.by, at=m.done_at),
                **activity_options(),
            )

    async def _send_due_alerts(self, now: datetime) -> None:
        assert self._policy is not None
        rules = self._policy.tiers[self._coverage.tier]
        has_cam = rules.has_cam and self._coverage.cam_id is not None
        escalation = self._policy.days(self._policy.onboarding.escalation_days)
        for m in self._milestones.values():
            if not m.required or m.done_at is not None:
                continue
            if not m.nudged and now >= m.due_at:
                m.nudged = True
                to = ["partner"] + (["cam"] if has_cam and rules.cam_on_every_alert else [])
                await self._notify("nudge", to, step=f"nudge:{m.key}", context=self._milestone_context(m))
            if not m.escalated and now >= m.due_at + escalation:
                m.escalated = True
                if has_cam:  # tiers without a CAM email no CAM: the partner nudge stands
                    await self._notify("escalation", ["cam"], step=f"escalation:{m.key}",
                                       context=self._milestone_context(m))

    def _apply_required(self) -> None:
        """Which milestones are required depends on the tier."""
        if self._policy is None:
            return  # the plan is built from the coverage when the policy is read
        for spec in self._policy.onboarding.milestones:
            self._milestones[spec.key].required = self._coverage.tier in spec.required_for

    def _next_deadline(self) -> datetime:
        assert self._policy is not None
        escalation = self._policy.days(self._policy.onboarding.escalation_days)
        deadlines = [self._ends_at]
        for m in self._milestones.values():
            if not m.required or m.done_at is not None:
                continue
            if not m.nudged:
                deadlines.append(m.due_at)
            elif not m.escalated:
                deadlines.append(m.due_at + escalation)
        return min(deadlines)

    async def _wait_until(self, deadline: datetime) -> None:
        timeout = deadline - workflow.now()
        if timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(lambda: bool(self._inbox) or self._coverage_changed,
                                          timeout=timeout)
        except asyncio.TimeoutError:
            pass

    async def _finish(self, wid: str, state: OnboardingState) -> None:
        assert self._policy is not None
        self._state = state
        self._upsert_search_attributes()
        await workflow.execute_activity_method(
            OnboardingActivities.finish_onboarding,
            FinishOnboardingInput(idempotency_key=f"{wid}:{state.value}", partner_id=self._partner_id,
                                  state=state, at=workflow.now()),
            **activity_options(),
        )
        has_cam = self._policy.tiers[self._coverage.tier].has_cam and self._coverage.cam_id is not None
        missing = [m.title for m in self._milestones.values() if m.required and not m.done_at]
        if state == OnboardingState.activated:
            await self._notify("activated", ["partner"] + (["cam"] if has_cam else []))
        else:
            await self._notify("at_risk", ["partner", "cam" if has_cam else "ops"],
                               context={"missing": missing})

    # ------------------------------------------------------------------ helpers

    async def _notify(self, template: str, recipients: list[str], *, step: str | None = None,
                      context: dict | None = None) -> None:
        wid = workflow.info().workflow_id
        await notify(
            key=f"{wid}:notify:{step or template}", partner_id=self._partner_id, journey=Journey.onboarding,
            template=template, recipients=recipients, audit_action=f"onboarding.{template}_sent",
            context={"partner_name": self._name, **(context or {})},
        )

    def _plan_context(self) -> dict:
        return {"plan_days": self._policy.onboarding.plan_days if self._policy else 0,
                "milestones": [{"title": m.title, "due": m.due_at.date().isoformat(), "required": m.required}
                               for m in self._milestones.values()]}

    def _milestone_context(self, m: MilestoneProgress) -> dict:
        return {"milestone": m.title, "milestone_key": m.key, "due": m.due_at.date().isoformat()}

    def _upsert_search_attributes(self) -> None:
        upsert_journey_attributes(self._partner_id, self._coverage, Journey.onboarding, self._state.value)
