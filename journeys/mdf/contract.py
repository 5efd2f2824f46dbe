"""What other journeys and the platform may use of the MDF journey: small reads of its requests
and the accrual a closed-won deal earns (MDF's own ledger rule, run in the caller's transaction)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.mdf.ledger import accrue_for_deal
from journeys.mdf.models import MdfRequest

__all__ = ["accrue_for_deal", "request_partner"]


async def request_partner(session: AsyncSession, request_id: uuid.UUID) -> uuid.UUID | None:
    """The partner of an MDF request (None: no such request)."""
    return await session.scalar(select(MdfRequest.partner_id).where(MdfRequest.id == request_id))
