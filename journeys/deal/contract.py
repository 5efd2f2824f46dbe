"""What other journeys and the platform may use of the deal registration journey: small reads of
its deals and the one-click link register it keeps (plain values, never its tables)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy import Subquery, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.deal.domain import OPEN_STATES, DealState
from journeys.deal.models import Deal, UsedLink


class OpenDeal(BaseModel):
    """An open registration as a partner's pipeline lists it."""

    customer_name: str
    stage: str
    state: str
    amount_minor: int
    currency: str


async def open_pipeline(session: AsyncSession, partner_id: uuid.UUID, limit: int) -> list[OpenDeal]:
    """The partner's open deals, largest first (then by id), at most `limit` of them."""
    rows = await session.execute(
        select(Deal.customer_name, Deal.stage, Deal.state, Deal.amount_minor, Deal.currency)
        .where(Deal.partner_id == partner_id, Deal.state.in_([s.value for s in OPEN_STATES]))
        .order_by(Deal.amount_minor.desc(), Deal.id)
        .limit(limit)
    )
    return [OpenDeal.model_validate(row._mapping) for row in rows]


def won_by_mdf_request() -> Subquery:
    """The closed-won revenue of the deals sourced from each MDF request: a subquery of
    (`mdf_request_id`, `won`) for a reader to join (amounts in minor units of each deal's currency)."""
    return (
        select(Deal.mdf_request_id, func.sum(Deal.amount_minor).label("won"))
        .where(Deal.state == DealState.won.value, Deal.mdf_request_id.is_not(None))
        .group_by(Deal.mdf_request_id)
        .subquery()
    )


def use_link(session: AsyncSession, jti: str, entity_id: uuid.UUID, used_by: str) -> None:
    """Record a one-click link as used (in the caller's transaction; its commit fails with an
    IntegrityError when the link was used already)."""
    session.add(UsedLink(jti=jti, deal_id=entity_id, used_by=used_by))


async def free_link(session: AsyncSession, jti: str) -> None:
    """Make a used link usable again (its decision was not taken)."""
    await session.execute(delete(UsedLink).where(UsedLink.jti == jti))
