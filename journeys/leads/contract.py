"""What other journeys and the platform may use of the lead distribution journey: its message
names, its event payload, its policy section, and the crediting of a deal registered for the
customer of a lead the partner accepted."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api import journeys
from domain.errors import DomainError
from journeys.leads.domain import DEAL_REGISTERED, JOURNEY, DealRegistered, LeadState
from journeys.leads.events import LeadEvent
from journeys.leads.models import Lead
from journeys.leads.policy import LeadsPolicy

__all__ = ["DEAL_REGISTERED", "JOURNEY", "LeadEvent", "LeadsPolicy", "credit_registered_deal"]

log = logging.getLogger(__name__)


async def credit_registered_deal(
    session: AsyncSession,
    client: Client,
    *,
    partner_id: uuid.UUID,
    domain: str,
    category: str,
    deal_id: uuid.UUID,
    by: str,
) -> uuid.UUID | None:
    """A deal the partner registered for the customer (registrable domain) and category of a lead
    it accepted is credited to that lead (the oldest, if several): the lead's journey is told, as
    `POST /leads/{id}/deal` tells it, and converts once. Returns the lead's id (None: no such lead).
    The registration stands whatever happens here: a journey that does not answer is logged and the
    partner may still name the deal (`POST /leads/{id}/deal`)."""
    lead_id = await session.scalar(
        select(Lead.id)
        .where(
            Lead.state == LeadState.accepted.value,
            Lead.partner_id == partner_id,
            Lead.domain == domain,
            Lead.product_category == category,
        )
        .order_by(Lead.created_at, Lead.id)
        .limit(1)
    )
    if lead_id is None:
        return None
    credit = DealRegistered(deal_id=str(deal_id), partner_id=str(partner_id), by=by)
    try:
        await journeys.signal(client, JOURNEY, lead_id, DEAL_REGISTERED, credit)
    except (DomainError, RPCError) as err:
        log.warning("deal %s not credited to lead %s: %s", deal_id, lead_id, err)
        return None
    return lead_id
