"""What other journeys and the platform may use of the lead distribution journey: its message
names, its event payload, its policy section, and the crediting of a deal registered for the
customer of a lead the partner accepted."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import ColumnElement, ScalarSelect, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api import journeys
from domain.errors import Conflict, DomainError, Invalid
from journeys.leads.domain import DEAL_REGISTERED, JOURNEY, DealRegistered, LeadState
from journeys.leads.events import LeadEvent
from journeys.leads.models import Lead, LeadOffer
from journeys.leads.policy import LeadsPolicy

__all__ = [
    "DEAL_REGISTERED",
    "JOURNEY",
    "LeadEvent",
    "LeadsPolicy",
    "check_named_lead",
    "credit_registered_deal",
    "lead_of_registered_deal",
]

log = logging.getLogger(__name__)


async def check_named_lead(session: AsyncSession, lead_id: uuid.UUID, partner_id: uuid.UUID) -> None:
    """`lead_id` on `POST /deals`, checked before anything is written: a lead offered to this
    partner (422 naming the field otherwise; another partner's lead is not told apart from none),
    and accepted by it (409 naming its state: offered, declined, converted...)."""
    lead = await session.get(Lead, lead_id)
    offered = lead is not None and (
        lead.partner_id == partner_id
        or await session.scalar(
            select(LeadOffer.offer_no).where(LeadOffer.lead_id == lead_id, LeadOffer.partner_id == partner_id).limit(1)
        )
        is not None
    )
    if lead is None or not offered:
        raise Invalid(f"lead_id: no lead {lead_id} of this partner")
    if lead.state != LeadState.accepted.value or lead.partner_id != partner_id:
        raise Conflict(f"lead {lead_id} is {lead.state}: only a lead the partner accepted is credited with a deal")


def lead_of_registered_deal(partner_id: ColumnElement, domain: ColumnElement, category: ColumnElement) -> ScalarSelect:
    """SQL: the lead a deal the partner registers is credited to (`credit_registered_deal`) when
    it names none: the oldest the partner accepted for the customer (registrable domain) and
    category; NULL: no such lead. For the registration's own read (in its transaction, with its
    locks: journeys/deal/service.py `_registration_read`)."""
    return (
        select(Lead.id)
        .where(
            Lead.state == LeadState.accepted.value,
            Lead.partner_id == partner_id,
            Lead.domain == domain,
            Lead.product_category == category,
        )
        .order_by(Lead.created_at, Lead.id)
        .limit(1)
        .scalar_subquery()
    )


async def credit_registered_deal(
    client: Client, lead_id: uuid.UUID | None, *, partner_id: uuid.UUID, deal_id: uuid.UUID, by: str
) -> uuid.UUID | None:
    """Credit a registered deal to its lead (`lead_of_registered_deal`): the lead's journey is
    told, as `POST /leads/{id}/deal` tells it, and converts once. Returns the lead's id (None: no
    lead). The registration stands whatever happens here: a journey that does not answer is
    logged and the partner may still name the deal (`POST /leads/{id}/deal`)."""
    if lead_id is None:
        return None
    credit = DealRegistered(deal_id=str(deal_id), partner_id=str(partner_id), by=by)
    try:
        await journeys.signal(client, JOURNEY, lead_id, DEAL_REGISTERED, credit)
    except (DomainError, RPCError) as err:
        log.warning("deal %s not credited to lead %s: %s", deal_id, lead_id, err)
        return None
    return lead_id
