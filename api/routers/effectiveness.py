"""CAM effectiveness over the API (api/effectiveness.py): one CAM's figures (ops, or the CAM
itself) and every CAM's (ops)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api import effectiveness
from api.deps import OpsDep, PrincipalDep, SessionDep
from domain.enums import Role
from domain.policy_kit import MAX_DAYS
from store.models import Cam

router = APIRouter(tags=["cams"])
Days = Annotated[float, Query(gt=0, le=MAX_DAYS, allow_inf_nan=False, description="the window, in policy days")]


class CamEffectivenessOut(BaseModel):
    cam_id: uuid.UUID
    name: str
    start: datetime
    end: datetime
    figures: dict[str, float | int | None] = Field(
        description="partners, escalations, and every journey's figures (null: nothing to measure in the window)"
    )
    labels: dict[str, str] = Field(description="what each figure is called on the workspace page")


def _out(r: effectiveness.CamFigures) -> CamEffectivenessOut:
    return CamEffectivenessOut(
        cam_id=r.cam_id, name=r.name, start=r.start, end=r.end, figures=r.figures, labels=effectiveness.LABELS
    )


@router.get(
    "/cams/{cam_id}/effectiveness",
    response_model=CamEffectivenessOut,
    responses={404: {"description": "no such CAM"}},
)
async def cam_effectiveness(cam_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, days: Days = 90):
    """The CAM's effectiveness over the last `days` policy days: decision times against the SLA
    (p50/p95), escalations, the portfolio's health and its trend, certification rate, deal
    registrations, MDF utilization, QBR completion, lead acceptance; ops, or the CAM itself."""
    if principal.role == Role.partner or (principal.role == Role.cam and principal.cam_id != cam_id):
        raise HTTPException(403, detail=f"your {principal.role.value} key may not read CAM {cam_id}")
    cam = await session.get(Cam, cam_id)
    if cam is None:
        raise HTTPException(404, detail=f"no CAM with id {cam_id}")
    return _out(await effectiveness.cam_figures(session, cam, days))


@router.get("/effectiveness/cams", response_model=list[CamEffectivenessOut])
async def every_cam_effectiveness(principal: OpsDep, session: SessionDep, days: Days = 90):
    """Every active CAM's effectiveness over the last `days` policy days (ops)."""
    return [_out(r) for r in await effectiveness.every_cam(session, days)]
