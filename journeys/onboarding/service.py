"""The onboarding journey's service: its live progress and milestone reports (a workflow update,
answered once the milestone is recorded; an unknown key or an ended journey is refused at once)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys
from api.auth import Principal
from domain.journeys import PROGRESS
from journeys.onboarding.domain import JOURNEY, REPORT_MILESTONE, MilestoneDone, MilestoneReport, OnboardingProgress
from journeys.onboarding.models import PartnerMilestone
from store.models import Partner


async def progress(client: Client, partner: Partner) -> OnboardingProgress:
    return await journeys.query(client, JOURNEY, partner.id, PROGRESS, OnboardingProgress)


async def report_milestone(
    session: AsyncSession, client: Client, principal: Principal, partner: Partner, key: str, *, deadline: float
) -> MilestoneReport:
    done = await session.get(PartnerMilestone, (partner.id, key))
    if done is not None and done.done_at is not None:  # a repeat, even after the journey ended
        return MilestoneReport(partner_id=str(partner.id), milestone=key, accepted=True, already_done=True)
    await session.close()  # hold no connection while the journey answers
    return await journeys.run_update(
        client,
        JOURNEY,
        partner.id,
        REPORT_MILESTONE,
        MilestoneDone(key=key, by=principal.actor),
        MilestoneReport,
        deadline=deadline,
        progress=f"/partners/{partner.id}/onboarding",
    )
