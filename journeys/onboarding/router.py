"""The onboarding journey's API: live progress (query) and milestone reports (update)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from api.deps import PartnerDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep, UpdateBudget
from api.openapi import QUERY, UPDATE
from api.routemeta import route_meta
from journeys.onboarding import service
from journeys.onboarding.schemas import MILESTONE_KEY, MilestoneReport, OnboardingProgress

router = APIRouter(prefix="/partners/{partner_id}/onboarding", tags=["onboarding"])


@router.get("", response_model=OnboardingProgress, openapi_extra=route_meta(QUERY))
async def onboarding_progress(partner: PartnerDep, temporal: TemporalDep):
    """Live progress of the journey, from the workflow itself (a query)."""
    return await service.progress(temporal, partner)


@router.post(
    "/milestones/{key}",
    response_model=MilestoneReport,
    dependencies=[UpdateBudget],
    responses={
        404: {"description": "no such milestone in the plan (the known keys are named)"},
        409: {"description": "the journey has ended"},
    },
    openapi_extra=route_meta({409: "the journey has ended", **UPDATE}),
)
async def report_milestone(
    partner: PartnerDep,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    key: str = Path(pattern=MILESTONE_KEY),
):
    """Mark a milestone done (the partner itself, its CAM or ops); answered once recorded.
    Repeating it is harmless (`already_done: true`)."""
    return await service.report_milestone(
        session, temporal, principal, partner, key, deadline=settings.update_deadline_seconds
    )
