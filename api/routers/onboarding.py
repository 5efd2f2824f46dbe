"""The onboarding journey's API: live progress (query) and milestone reports (signal)."""
from __future__ import annotations

import asyncio
import time
import uuid

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.deps import get_principal, get_session, get_temporal
from api.routers.partners import load_partner
from api.schemas import MilestoneReport
from domain.enums import Journey, OnboardingState
from domain.journeys import workflow_id
from domain.onboarding import MilestoneDone, OnboardingProgress
from workflows.onboarding import OnboardingWorkflow

router = APIRouter(prefix="/partners/{partner_id}/onboarding", tags=["onboarding"])


async def _progress(temporal: Client, partner_id: uuid.UUID,
                    plan_wait: float = 10.0) -> tuple[WorkflowHandle, OnboardingProgress]:
    """Query the journey. A journey that has just started has no plan until it has read the
    policy; wait briefly for it so a report sent right after enrolment is not refused."""
    handle = temporal.get_workflow_handle(workflow_id(Journey.onboarding, str(partner_id)))
    deadline = time.monotonic() + plan_wait
    while True:
        try:
            progress = await handle.query(OnboardingWorkflow.progress)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(404, detail=f"partner {partner_id} has no onboarding journey") from err
            raise
        if progress.milestones or progress.state != OnboardingState.in_progress:
            return handle, progress
        if time.monotonic() > deadline:
            raise HTTPException(503, detail="the onboarding journey is still starting; retry in a moment")
        await asyncio.sleep(0.1)


@router.get("", response_model=OnboardingProgress)
async def onboarding_progress(partner_id: uuid.UUID, principal: Principal = Depends(get_principal),
                              session: AsyncSession = Depends(get_session),
                              temporal: Client = Depends(get_temporal)):
    """Live progress of the journey, from the workflow itself (a query)."""
    await load_partner(session, partner_id, principal)
    _, progress = await _progress(temporal, partner_id)
    return progress


@router.post("/milestones/{key}", response_model=MilestoneReport, status_code=202)
async def report_milestone(partner_id: uuid.UUID,
                           key: str = Path(pattern=r"^[a-z][a-z0-9_]{1,39}$"),
                           principal: Principal = Depends(get_principal),
                           session: AsyncSession = Depends(get_session),
                           temporal: Client = Depends(get_temporal)):
    """Mark a milestone done (the partner itself, its CAM or ops). Repeating it is harmless."""
    await load_partner(session, partner_id, principal)
    handle, progress = await _progress(temporal, partner_id)
    milestone = next((m for m in progress.milestones if m.key == key), None)
    if milestone is None:
        known = ", ".join(m.key for m in progress.milestones)
        raise HTTPException(404, detail=f"no milestone {key!r} in this partner's plan (known: {known})")
    if milestone.done_at is not None:
        return MilestoneReport(partner_id=partner_id, milestone=key, accepted=True, already_done=True)
    if progress.state != OnboardingState.in_progress:
        raise HTTPException(409, detail=f"the onboarding journey has ended ({progress.state.value}); "
                                        "milestones can no longer be reported")
    try:
        await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key=key, by=principal.actor))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(409, detail="the onboarding journey has just ended") from err
        raise
    return MilestoneReport(partner_id=partner_id, milestone=key, accepted=True, already_done=False)
