"""CAM effectiveness in the workspace (`/web/cams/effectiveness`, api/effectiveness.py): every
CAM's figures for ops, a CAM's own for a CAM; and the same as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from api import effectiveness
from api.deps import SessionDep
from api.web.pages import WebRoute, render
from api.web.security import PREFIX, WebUser, signed_in
from domain.enums import Role
from domain.policy_kit import MAX_DAYS
from store.models import Cam

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
Days = Annotated[float, Query(gt=0, le=MAX_DAYS, allow_inf_nan=False)]


async def _rows(request: Request, session, days: float) -> tuple[WebUser, list[effectiveness.CamFigures]]:
    user = await signed_in(request, session)
    if user.principal.role == Role.ops:
        return user, await effectiveness.every_cam(session, days)
    cam = await session.scalar(select(Cam).where(Cam.id == user.principal.cam_id))
    return user, [await effectiveness.cam_figures(session, cam, days)] if cam else []


@router.get("/cams/effectiveness")
async def effectiveness_page(request: Request, session: SessionDep, days: Days = 90):
    user, rows = await _rows(request, session, days)
    return render(request, "effectiveness", user, rows=rows, labels=effectiveness.LABELS, days=days)


@router.get("/cams/effectiveness.csv")
async def effectiveness_csv(request: Request, session: SessionDep, days: Days = 90):
    _, rows = await _rows(request, session, days)
    return Response(
        effectiveness.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cam-effectiveness.csv"'},
    )
