"""Partner health gives the QBR scorecard no figures of its own (its manifest's `scorecard_inputs`):
the scorecard scores the quarter, health the partner now."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import ScorecardQuery


async def scorecard_inputs(session: AsyncSession, q: ScorecardQuery) -> dict[str, Any]:
    return {}
