"""Activities of the onboarding journey: the milestone plan, milestone completion, the outcome."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.enums import PartnerStatus
from domain.journeys import StepResult
from journeys.onboarding.domain import (
    JOURNEY,
    FinishOnboardingInput,
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
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

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
        pid = uuid.UUID(inp.partner_id)
        status = _STATUS[inp.state]
        async with self.sessionmaker() as session, session.begin():
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
                return StepResult(applied=False)
            await session.execute(update(Partner).where(Partner.id == pid).values(status=status.value))
        return StepResult(applied=True)
