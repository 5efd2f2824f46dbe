"""Rows and inputs of the deal journey's tests, written through the real models."""

from __future__ import annotations

from datetime import date

from domain.journeys import Coverage
from journeys.deal.domain import DealInput, normalize_company_name
from journeys.deal.models import Deal
from store.models import Partner


async def make_deal(
    sessionmaker,
    partner: Partner,
    *,
    customer: str = "Globex Corporation",
    domain: str = "globex.test",
    category: str = "network",
    amount_minor: int = 500_000,
    currency: str = "USD",
    state: str = "pending_approval",
):
    deal = Deal(
        partner_id=partner.id,
        customer_name=customer,
        customer_domain=domain,
        customer_key=domain,
        customer_name_key=normalize_company_name(customer),
        product_category=category,
        amount_minor=amount_minor,
        currency=currency,
        expected_close_date=date(2027, 3, 31),
        stage="qualification",
        state=state,
        extensions_used=0,
        created_by=f"partner:{partner.id}",
    )
    async with sessionmaker() as session, session.begin():
        session.add(deal)
    return deal


def deal_input(deal, partner: Partner, *, conflict_with: str | None = None):

    return DealInput(
        deal_id=str(deal.id),
        partner_id=str(partner.id),
        partner_name=partner.name,
        coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
        customer_name=deal.customer_name,
        product_category=deal.product_category,
        amount_minor=deal.amount_minor,
        currency=deal.currency,
        stage=deal.stage,
        state=deal.state,
        conflict_with=conflict_with,
    )
