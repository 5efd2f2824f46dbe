"""What the platform and other journeys may use of the deal registration journey (nothing else of
it is imported from outside): its name, its stages and states, the signal that moves a deal to
another stage (what a CRM says), and a deal read for update."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from journeys.deal.domain import CHANGE_STAGE, JOURNEY, DealStage, DealState, StageChange
from journeys.deal.models import Deal

__all__ = ["CHANGE_STAGE", "JOURNEY", "DealRef", "DealStage", "DealState", "StageChange", "lock_deal"]


@dataclass(frozen=True)
class DealRef:
    id: uuid.UUID
    partner_id: uuid.UUID
    state: DealState


async def lock_deal(session: AsyncSession, deal_id: uuid.UUID) -> DealRef | None:
    """The deal, its row locked until the transaction ends (None: no such deal)."""
    deal = await session.get(Deal, deal_id, with_for_update=True)
    return None if deal is None else DealRef(id=deal.id, partner_id=deal.partner_id, state=DealState(deal.state))
