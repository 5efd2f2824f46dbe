"""The certification journey's figures for the QBR scorecard (its manifest's `scorecard_inputs`):
the partner's current certifications and the tracks that lapsed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import ScorecardQuery
from journeys.cert.domain import CertState
from journeys.cert.models import Certification


async def scorecard_inputs(session: AsyncSession, q: ScorecardQuery) -> dict[str, Any]:
    """Current: not lapsed and not restricting registrations (as they stand, not over the window)."""
    certs = (
        await session.execute(
            select(Certification.track, Certification.state, Certification.restricted).where(
                Certification.partner_id == q.partner_id
            )
        )
    ).all()
    lapsed = CertState.lapsed.value
    return {
        "certifications_current": sum(1 for _, state, restricted in certs if state != lapsed and not restricted),
        "certifications_lapsed": sorted({track for track, state, _ in certs if state == lapsed}),
    }
