"""Activities of the onboarding journey: the milestone plan, milestone completion, the outcome."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.common import CommonActivities, shared_outbox
from domain.enums import PartnerStatus
from domain.journeys import SendResult, StepResult
from journeys.onboarding.domain import (
    JOURNEY,
    FinishOnboardingInput,
    FinishOnboardingNotice,
    OnboardingActivity,
    OnboardingState,
    OpenPlanInput,
    RecordMilestoneInput,
)
from journeys.onboarding.models import PartnerMilestone
from store import repo
from store.models import Partner

_STATUS = {OnboardingState.activated: PartnerStatus.active, OnboardingState.at_risk: PartnerStatus.at_risk}


class OnboardingActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, outbox: CommonActivities | None = None):
        """`outbox`: the shared activities, which queue and send the email of `finish_and_notify`."""
        self.sessionmaker = sessionmaker
        self.outbox = outbox

    @activity.defn(name=OnboardingActivity.OPEN_PLAN)
    async def open_plan(self, inp: OpenPlanInput) -> StepResult:
        pid = uuid.UUID(inp.partner_id)
        async with self.sessionmaker() as session, session.begin():
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor="system",
                action="onboarding.plan_opened",
                partner_id=pid,
                journey=JOURNEY,
                detail={
                    "policy_version": inp.policy_version,
                    "milestones": {m.key: m.due_at.isoformat() for m in inp.milestones},
                },
                state=(inp.partner_id, OnboardingState.in_progress.value),
            ):
                return StepResult(applied=False)
            if inp.milestones:  # every milestone of the plan in one statement
                await session.execute(
                    insert(PartnerMilestone)
                    .values(
                        [
                            {
                                "partner_id": pid,
                                "key": m.key,
                                "title": m.title,
                                "required": m.required,
                                "due_at": m.due_at,
                            }
                            for m in inp.milestones
                        ]
                    )
                    .on_conflict_do_nothing()
                )
        return StepResult(applied=True)

    @activity.defn(name=OnboardingActivity.RECORD_MILESTONE)
    async def record_milestone(self, inp: RecordMilestoneInput) -> StepResult:
        pid = uuid.UUID(inp.partner_id)
        async with self.sessionmaker() as session, session.begin():
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action="onboarding.milestone_done",
                partner_id=pid,
                journey=JOURNEY,
                detail={"milestone": inp.key},
            ):
                return StepResult(applied=False)
            await session.execute(
                update(PartnerMilestone)
                .where(
                    PartnerMilestone.partner_id == pid,
                    PartnerMilestone.key == inp.key,
                    PartnerMilestone.done_at.is_(None),
                )
                .values(done_at=inp.at, done_by=inp.by)
            )
        return StepResult(applied=True)

    @activity.defn(name=OnboardingActivity.FINISH)
    async def finish(self, inp: FinishOnboardingInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            return StepResult(applied=await self._finish(session, inp))

    @activity.defn(name=OnboardingActivity.FINISH_AND_NOTIFY)
    async def finish_and_notify(self, inp: FinishOnboardingNotice) -> SendResult:
        """`finish` and the email that tells the outcome (`inp.notice`, with the events it carries):
        the partner's status recorded and the email queued in one transaction, then sent
        (`CommonActivities.notify_after`; kit generation 12). Each half is idempotent on its own
        key. A name of its own: a worker that does not know it never records an outcome without
        its email."""
        return await shared_outbox(self.outbox).notify_after(
            inp.notice, lambda session: self._finish(session, inp.record)
        )

    async def _finish(self, session: AsyncSession, inp: FinishOnboardingInput) -> bool:
        """The outcome's audit row (once per key) and the partner's status, in the caller's transaction."""
        pid = uuid.UUID(inp.partner_id)
        status = _STATUS[inp.state]
        if not await repo.claim_step(
            session,
            key=inp.idempotency_key,
            actor="system",
            action=f"onboarding.{inp.state.value}",
            partner_id=pid,
            journey=JOURNEY,
            detail={"partner_status": status.value},
            state=(inp.partner_id, inp.state.value),
        ):
            return False
        await session.execute(update(Partner).where(Partner.id == pid).values(status=status.value))
        return True
