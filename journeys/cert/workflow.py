"""Certification renewal: `cert-{certification_id}`, perpetual.

Reminders to the certified person and the partner at the policy's offsets before expiry (and
an alert to the CAM for CAM tiers). At expiry, after the policy's grace period, the
certification lapses and restricts deal registration in its category. A renewal (update)
restores it and the workflow continues as new for the next period, so each run's history
stays short however many times it is renewed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import actors
    from domain.journeys import CHANGE_COVERAGE, PROGRESS, Coverage, Refusal, shifted
    from domain.webhooks import EventInput
    from journeys.cert.domain import (
        JOURNEY,
        LEGACY_ACTIVITY_NAMES,
        MILESTONE_IN_STEP,
        RENEW,
        TELLS_WITH_STATE,
        CertActivity,
        CertInput,
        CertProgress,
        CertState,
        CertStateInput,
        CertStateNotice,
        Renewal,
        RenewalResult,
    )
    from journeys.cert.events import CertEvent
    from journeys.onboarding.contract import FIRST_CERTIFICATION, milestone_done
    from workflows.kit import JourneyKit


@workflow.defn
class CertWorkflow:
    @workflow.init
    def __init__(self, inp: CertInput) -> None:
        self._kit = JourneyKit(
            JOURNEY,
            inp.partner_id,
            inp.coverage,
            LEGACY_ACTIVITY_NAMES,
            context=self._context,
            scope=lambda: f"{self._inp.period}:",
        )
        self._inp = inp
        self._state = CertState.active
        self._restricted = False
        self._renewal: Renewal | None = None
        self._renewal_recorded = False
        self._sent: list[str] = []

    # ------------------------------------------------------------------ messages

    @workflow.update(name=RENEW)
    async def renew(self, renewal: Renewal) -> RenewalResult:
        self._renewal = renewal
        await workflow.wait_condition(lambda: self._renewal_recorded)  # answer once restored in the DB
        return RenewalResult(
            cert_id=self._inp.cert_id,
            state=CertState.active,
            expires_at=renewal.expires_at,
            period=self._inp.period + 1,
        )

    @renew.validator
    def _validate_renew(self, renewal: Renewal) -> None:
        if self._renewal is not None:
            raise ApplicationError("a renewal is already being applied", type=Refusal.NOT_PENDING)
        self._kit.check_horizon("expires_at", renewal.expires_at)  # before any comparison: a naive time is refused
        if renewal.expires_at <= max(self._inp.expires_at, workflow.now()):
            raise ApplicationError(
                f"expires_at: the new expiry must be after the current one ({self._inp.expires_at:%Y-%m-%d %H:%M}) "
                "and in the future",
                type=Refusal.TOO_SHORT,
            )

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.apply_coverage(coverage, self._state.value)

    @workflow.query(name=PROGRESS)
    def progress(self) -> CertProgress:
        return CertProgress(
            cert_id=self._inp.cert_id,
            partner_id=self._inp.partner_id,
            state=self._state,
            expires_at=self._inp.expires_at,
            period=self._inp.period,
            restricted=self._restricted,
            reminders_sent=list(self._sent),
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: CertInput) -> None:
        policy = await self._kit.load_policy(inp.policy_version)
        self._kit.upsert(self._state.value)
        if inp.period == 1:
            # The first certification is a milestone of the partner's onboarding: told by the step
            # that records `active` (the kit's generation 2), before it by a signal of the workflow's own.
            in_step = self._kit.generation >= MILESTONE_IN_STEP
            if not in_step:
                await self._kit.tell(*milestone_done(inp.partner_id, FIRST_CERTIFICATION, self._kit.actor), wait=False)
            await self._set_state(
                CertState.active, restricted=False, step="active", milestone_by=self._kit.actor if in_step else None
            )

        # Before expiry: reminders, and the CAM alert for CAM tiers.
        has_cam = self._kit.has_cam()
        alerts = [
            (shifted(inp.expires_at, -policy.days(d)), f"reminder:{d:g}", ["partner", f"person:{inp.person_email}"], d)
            for d in sorted(policy.cert.reminder_days, reverse=True)
        ]
        if has_cam:
            alerts.append(
                (
                    shifted(inp.expires_at, -policy.days(policy.cert.cam_alert_days)),
                    f"cam_alert:{policy.cert.cam_alert_days:g}",
                    ["cam"],
                    policy.cert.cam_alert_days,
                )
            )
        for at, step, to, days in sorted(alerts, key=lambda a: a[0]):
            what = (
                f"CAM alert, {days:g} days before expiry"
                if step.startswith("cam_alert")
                else (f"expiry reminder, {days:g} days before")
            )
            if await self._renewed_before(at, what):
                return await self._next_period()
            if workflow.now() - at < policy.days(1):  # skip alerts whose time passed long ago
                template = "cam_alert" if step.startswith("cam_alert") else "expiry_reminder"
                await self._kit.notify(template, to, step=step, days_left=days)
                self._sent.append(step)
        if await self._renewed_before(inp.expires_at, "the certification expires"):
            return await self._next_period()

        # Expired: a grace period, then the entitlements it gates are restricted.
        if policy.cert.grace_days > 0:
            grace_ends = shifted(inp.expires_at, policy.days(policy.cert.grace_days))
            await self._tell_state(
                CertState.grace,
                ["partner", f"person:{inp.person_email}"],
                restricted=False,
                grace_ends=grace_ends.date().isoformat(),
            )
            if await self._renewed_before(grace_ends, "grace ends: restrict deal registration"):
                return await self._next_period()
        await self._tell_state(
            CertState.lapsed,
            ["partner", f"person:{inp.person_email}", "cam" if has_cam else "ops"],
            restricted=True,
            event="certification.lapsed",
        )
        await self._kit.wait_for(lambda: self._renewal is not None, waiting_for="a renewal (lapsed)")
        return await self._next_period()

    # ------------------------------------------------------------------ helpers

    async def _renewed_before(self, deadline: datetime, what: str) -> bool:
        return await self._kit.wait_until(
            lambda: self._renewal is not None, deadline, summary=what, waiting_for="a renewal"
        )

    async def _next_period(self) -> None:
        """Record the renewal (entitlements restored), tell the partner, continue as new."""
        assert self._renewal is not None
        renewal = self._renewal
        period = self._inp.period + 1
        await self._set_state(
            CertState.active,
            restricted=False,
            step=f"renewed:{period}",
            by=renewal.by,
            expires_at=renewal.expires_at,
            period=period,
        )
        self._renewal_recorded = True
        await self._kit.notify(
            "renewed",
            ["partner", f"person:{self._inp.person_email}"],
            step=f"renewed:{period}",
            new_expiry=renewal.expires_at.date().isoformat(),
            events=[
                self._kit.event("certification.renewed", self._event(renewal.expires_at), step=f"renewed:{period}")
            ],
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self._inp.model_copy(
                update={
                    "expires_at": renewal.expires_at,
                    "period": period,
                    "coverage": self._kit.coverage,
                    "policy_version": None,
                }
            )
        )

    def _event(self, expires_at: datetime) -> CertEvent:
        return CertEvent(
            certification_id=self._inp.cert_id,
            partner_id=self._inp.partner_id,
            category=self._inp.product_category,
            expires_at=expires_at,
            state=self._state.value,
        )

    async def _set_state(self, state: CertState, *, restricted: bool, step: str, **record: Any) -> None:
        """The state and its record (`_state_input`'s `by`, `expires_at`, `period`, `milestone_by`)."""
        self._state, self._restricted = state, restricted
        inp = self._state_input(state, restricted, step, **record)
        await self._kit.record_state(state.value, CertActivity.RECORD_STATE, inp, by=inp.by)

    async def _tell_state(
        self, state: CertState, recipients: list[str], *, restricted: bool, event: str | None = None, **context: Any
    ) -> None:
        """A state change of the system's (step `<state>`) and the email (template `<state>`) that
        tells it, with the event `event`: one step since the kit's generation 13 (`TELLS_WITH_STATE`:
        `record_and_notify`, unless an update waits for its answer); before, the record and then
        the email, the calls the recorded histories have."""
        if not self._kit.tells_with_state(TELLS_WITH_STATE):
            await self._set_state(state, restricted=restricted, step=state.value)
            await self._kit.notify(state.value, recipients, events=self._told(event), **context)
            return
        self._state, self._restricted = state, restricted
        record = self._state_input(state, restricted, state.value)
        await self._kit.record_and_notify(
            state.value,
            CertActivity.RECORD_STATE_AND_NOTIFY,
            lambda notice: CertStateNotice(record=record, notice=notice),
            state.value,
            recipients,
            by=actors.SYSTEM,
            events=self._told(event),
            **context,
        )

    def _told(self, event: str | None) -> list[EventInput]:
        """The event `event` of the state just set (none: no event)."""
        return [self._kit.event(event, self._event(self._inp.expires_at))] if event else []

    def _state_input(
        self,
        state: CertState,
        restricted: bool,
        step: str,
        *,
        by: str = actors.SYSTEM,
        expires_at: datetime | None = None,
        period: int | None = None,
        milestone_by: str | None = None,
    ) -> CertStateInput:
        return CertStateInput(
            idempotency_key=self._kit.key(f"{self._inp.period}:{step}"),
            cert_id=self._inp.cert_id,
            state=state,
            restricted=restricted,
            by=by,
            expires_at=expires_at,
            period=period,
            at=workflow.now(),
            milestone_by=milestone_by,
        )

    def _context(self) -> dict[str, Any]:
        return {
            "partner_name": self._inp.partner_name,
            "person_name": self._inp.person_name,
            "track": self._inp.track,
            "product_category": self._inp.product_category,
            "cert_id": self._inp.cert_id,
            "expires_on": self._inp.expires_at.date().isoformat(),
        }
