"""Partner health's API: the score, its contributions, the trend and the open early warning."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import OpsDep, PartnerDep, SessionDep
from journeys.health import service
from journeys.health.domain import ProgramFigures
from journeys.health.schemas import HealthOut

partner_router = APIRouter(prefix="/partners/{partner_id}/health", tags=["health"])
program_router = APIRouter(prefix="/program", tags=["health"])


@partner_router.get("", response_model=HealthOut)
async def partner_health(partner: PartnerDep, session: SessionDep):
    """The partner's health now (score, band, every contribution), its trend over the policy's
    `health.trend_days` with what moved each change, and the open early-warning episode."""
    return await service.health(session, partner)


@program_router.get("/figures", response_model=ProgramFigures)
async def program_figures(principal: OpsDep, session: SessionDep):
    """The program's figures now (ops): active partner rate (a deal registered within
    `health.velocity_days`), dark partner rate (no activity of the partner's own for
    `health.dark_days`) against their targets, and the median time to first deal (policy days)."""
    return await service.program(session)


router = APIRouter()
router.include_router(partner_router)
router.include_router(program_router)
