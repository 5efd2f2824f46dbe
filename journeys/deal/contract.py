"""What other journeys and the platform may use of the deal registration journey: customer
normalization and small reads of deals (plain values)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.deal.domain import DealState, normalize_company_name, normalize_domain
from journeys.deal.models import Deal

__all__ = ["deal_partner", "normalize_company_name", "normalize_domain", "protecting_partner"]


async def deal_partner(session: AsyncSession, deal_id: uuid.UUID) -> uuid.UUID | None:
    """The partner that registered the deal (None: no such deal)."""
    return await session.scalar(select(Deal.partner_id).where(Deal.id == deal_id))


async def protecting_partner(session: AsyncSession, domain: str, category: str) -> uuid.UUID | None:
    """The partner whose approved deal protects this customer (registrable domain) in this category."""
    return await session.scalar(
        select(Deal.partner_id)
        .where(Deal.customer_key == domain, Deal.product_category == category, Deal.state == DealState.approved.value)
        .order_by(Deal.created_at)
        .limit(1)
    )
