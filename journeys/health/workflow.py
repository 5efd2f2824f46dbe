"""Partner health: `health-{partner_id}`, perpetual (an entity workflow per partner).

Every `health.evaluate_seconds` (or at once on the `refresh` signal, which the platform sends when
a journey publishes an event that moves health: the manifests' `health_events`) it evaluates the
partner: the activity reads every journey's signals through the registry, scores them
(journeys/health/domain.py) and records the score with what changed. A band that got worse, or a drop of
`drop_points` within `drop_days`, opens an early-warning episode: the partner's CAM (ops for tiers
without one) gets one alert with the explanation and `partner.at_risk` is published, once per
episode (the episode number is in the workflow's state and every step is idempotent on it, so a
worker restart or a retry sends nothing twice). The episode closes once the partner is healthy
again. After `evaluations_per_run` evaluations it continues as new, carrying the episode state.

A partner without a CAM that goes dark (nothing of its own for `health.dark_days`: no action, no
portal sign-in) gets `reengage_emails` emails `reengage_every_days` apart, each with the one next
step that would help it most (domain.py `next_step`), then ops is told (an email and a Today item);
the spell ends as soon as the partner acts or a CAM takes it on. Runs recorded before this replay
without it (patch `health-reengage`).

The health sweep (journeys/health/sweep.py) scores partners from the published events and
records their changed scores itself; when one of its evaluations may open or close an episode it
signals `swept` with it, and the workflow warns on it as on its own (`_warn`: an alert once per
episode, to the partner's CAM now), without evaluating again (patch `health-swept`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import CHANGE_COVERAGE, PROGRESS, Coverage, StepResult
    from journeys.health.domain import (
        JOURNEY,
        REENGAGE_PATCH,
        REFRESH,
        STEP_KIND_PATCH,
        SWEPT,
        SWEPT_PATCH,
        AlertInput,
        EvaluateInput,
        Evaluation,
        HealthActivity,
        HealthInput,
        HealthProgress,
        HealthState,
        ReengageAction,
        ReengagementInput,
        alert_reason,
        emails_now,
        episode_over,
        explain,
        health_changed,
        next_step,
        reengage_next,
        reengaged,
    )
    from journeys.health.events import HealthChanged
    from journeys.onboarding.contract import PartnerEvent
    from workflows.kit import JourneyKit


@workflow.defn
class HealthWorkflow:
    @workflow.init
    def __init__(self, inp: HealthInput) -> None:
        self._inp = inp
        self._kit = JourneyKit(JOURNEY, inp.partner_id, inp.coverage, context=self._context)
        self._episodes = inp.episodes
        self._alerting = inp.alerting
        self._refresh = False
        self._evaluations = 0
        self._last: Evaluation | None = None
        self._reengagement = inp.reengagement
        self._reengages = False  # set by the run: patch REENGAGE_PATCH
        self._swept: Evaluation | None = None  # the sweep's latest evaluation, not warned on yet

    @property
    def _state(self) -> HealthState:
        return HealthState.alerting if self._alerting else HealthState.watching

    @workflow.signal(name=REFRESH)
    def refresh(self) -> None:
        self._refresh = True

    @workflow.signal(name=SWEPT)
    def swept(self, ev: Evaluation) -> None:
        self._swept = ev

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.apply_coverage(coverage, self._state.value)

    @workflow.query(name=PROGRESS)
    def progress(self) -> HealthProgress:
        return HealthProgress(
            partner_id=self._inp.partner_id,
            state=self._state,
            score=self._last.score if self._last else None,
            band=self._last.band if self._last else None,
            evaluations=self._evaluations,
            episodes=self._episodes,
            reengagement=self._reengagement if self._reengages else None,
        )

    @workflow.run
    async def run(self, inp: HealthInput) -> None:
        self._reengages = self._kit.patched(REENGAGE_PATCH, since=13)
        policy = await self._kit.load_policy(inp.policy_version)
        self._kit.upsert(self._state.value)
        every = timedelta(seconds=policy.health.evaluate_seconds)
        while self._evaluations < policy.health.evaluations_per_run:
            self._refresh = False
            self._evaluations += 1
            step = f"{inp.generation}:{self._evaluations}"
            ev = await self._kit.write(  # local since the kit's generation 10
                HealthActivity.EVALUATE,
                EvaluateInput(
                    idempotency_key=self._kit.key(f"eval:{step}"),
                    partner_id=inp.partner_id,
                    policy_version=self._kit.policy_version,
                    activity=self._reengages and not self._kit.has_cam(),
                ),
                Evaluation,
                summary="evaluate the partner's health",
                since=10,
            )
            self._last = ev
            if ev.changed:
                await self._kit.emit("partner.health_changed", self._changed(ev), step=f"changed:{step}")
            await self._warn(ev, step)
            if self._reengages:
                await self._reengage(ev)
            if self._kit.patched(SWEPT_PATCH, since=13):
                await self._until(workflow.now() + every, step)
            else:
                await self._kit.wait_until(
                    lambda: self._refresh, workflow.now() + every, summary="evaluate again", waiting_for="a refresh"
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            inp.model_copy(
                update={
                    "generation": inp.generation + 1,
                    "episodes": self._episodes,
                    "alerting": self._alerting,
                    "reengagement": self._reengagement,
                    "coverage": self._kit.coverage,
                    "policy_version": None,
                }
            )
        )

    async def _until(self, deadline: datetime, step: str) -> None:
        """Wait for the next evaluation (the deadline or a refresh), warning on every evaluation
        the sweep signals meanwhile (its score is recorded: nothing to evaluate or publish)."""
        while True:
            await self._kit.wait_until(
                lambda: self._refresh or self._swept is not None,
                deadline,
                summary="evaluate again",
                waiting_for="a refresh or the sweep",
            )
            if self._swept is not None:
                ev, self._swept = self._swept, None
                self._last = ev
                await self._warn(ev, step)
                continue
            return

    async def _warn(self, ev: Evaluation, step: str) -> None:
        policy = self._kit.policy
        assert policy is not None
        if not self._alerting:
            reason = alert_reason(ev.score, ev.band, ev.previous_band, ev.peak, policy.health)
            if reason is None:
                return
            self._episodes += 1
            self._alerting = True
            episode = f"episode:{self._episodes}"
            await self._record(opened=True, reason=reason)
            lines = explain(reason, ev.contributions)
            to = ["cam"] if self._kit.has_cam() else ["ops"]
            await self._kit.notify(
                "alert",
                to,
                step=f"alert:{self._episodes}",
                reason=reason,
                lines=lines,
                score=ev.score,
                band=ev.band.value,
                events=[self._kit.event("partner.at_risk", self._at_risk(ev, reason), step=episode)],
            )
        elif episode_over(ev.score, ev.peak, policy.health):
            self._alerting = False
            await self._record(opened=False, reason=f"healthy again ({ev.score})")

    async def _reengage(self, ev: Evaluation) -> None:
        """The next step of the partner's re-engagement, if any (see the module's docstring)."""
        policy = self._kit.policy
        assert policy is not None
        h, before, now = policy.health, self._reengagement, workflow.now()
        action = reengage_next(
            before,
            last_active=ev.last_active,
            covered=self._kit.has_cam(),
            now=now,
            dark_after=policy.days(h.dark_days),
            every=policy.days(h.reengage_every_days),
            emails=h.reengage_emails,
        )
        if action == ReengageAction.none:
            return
        r = self._reengagement = reengaged(
            before, action, last_active=ev.last_active, now=now, emails=h.reengage_emails
        )
        ns = next_step(ev.contributions) if emails_now(before, r) else None
        step = ns.text if ns else ""
        await self._kit.write(  # local since the kit's generation 8
            HealthActivity.RECORD_REENGAGEMENT,
            ReengagementInput(
                idempotency_key=self._kit.key(f"reengage:{r.spell}:{action.value}:{r.sent}"),
                partner_id=self._inp.partner_id,
                spell=r.spell,
                action=action,
                at=now,
                emails=r.sent,
                step=step,
                since=r.since,
            ),
            StepResult,
            summary=f"record the re-engagement: {action.value}",
            since=8,
        )
        if ns is not None:
            named = self._kit.patched(STEP_KIND_PATCH, since=13)  # the step's kind named: German too
            kind: dict[str, Any] = {"step_kind": ns.kind} if named else {}
            await self._kit.notify(
                "reengage",
                ["partner"],
                step=f"reengage:{r.spell}:{r.sent}",
                next_step=step,
                number=r.sent,
                emails=h.reengage_emails,
                **kind,
            )
        elif action == ReengageAction.escalate:
            await self._kit.notify(
                "dark",
                ["ops"],
                step=f"dark:{r.spell}",
                since=f"{r.since:%Y-%m-%d}" if r.since else "its enrolment",
                emails=r.sent,
                dark_days=h.dark_days,
            )

    async def _record(self, *, opened: bool, reason: str) -> None:
        what = "opened" if opened else "closed"
        self._kit.upsert(self._state.value)
        await self._kit.write(  # local since the kit's generation 8
            HealthActivity.RECORD_ALERT,
            AlertInput(
                idempotency_key=self._kit.key(f"episode:{self._episodes}:{what}"),
                partner_id=self._inp.partner_id,
                episode=self._episodes,
                opened=opened,
                reason=reason,
                at=workflow.now(),
            ),
            StepResult,
            summary=f"record that early-warning episode {self._episodes} {what}",
            since=8,
        )

    def _changed(self, ev: Evaluation) -> HealthChanged:
        return health_changed(self._inp.partner_id, ev)

    def _at_risk(self, ev: Evaluation, reason: str) -> PartnerEvent:
        cov = self._kit.coverage
        return PartnerEvent(
            partner_id=self._inp.partner_id,
            partner_name=self._inp.partner_name,
            tier=cov.tier.value,
            cam_id=cov.cam_id,
            state=ev.band.value,
            source="health",
            score=ev.score,
            reason=reason,
            explanation=explain(reason, ev.contributions)[1:],
        )

    def _context(self) -> dict[str, Any]:
        return {"partner_name": self._inp.partner_name, "partner_id": self._inp.partner_id}
