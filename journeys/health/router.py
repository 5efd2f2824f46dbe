"""Partner health's API: the score, its contributions, the trend and the open early warning."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PartnerDep, SessionDep
from journeys.health import service
from journeys.health.schemas import HealthOut

router = APIRouter(prefix="/partners/{partner_id}/health", tags=["health"])


@router.get("", response_model=HealthOut)
async def partner_health(partner: PartnerDep, session: SessionDep):
    """The partner's health now (score, band, every contribution), its trend over the policy's
    `health.trend_days` with what moved each change, and the open early-warning episode."""
    return await service.health(session, partner)
