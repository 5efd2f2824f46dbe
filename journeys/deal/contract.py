"""What the platform and other journeys may use of the deal registration journey (nothing else of
it is imported from outside): its name, its stages and states, the signal that moves a deal to
another stage (what a CRM says), a deal read for update, and small reads of its deals (plain
values, never its tables), and registering a deal from a portal form (an accepted lead's)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Form
from pydantic import BaseModel
from sqlalchemy import Subquery, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas import SCREEN_LINE
from journeys.deal.domain import (
    CHANGE_STAGE,
    JOURNEY,
    OPEN_STATES,
    DealStage,
    DealState,
    StageChange,
    normalize_company_name,
    normalize_domain,
)
from journeys.deal.models import Deal

if TYPE_CHECKING:
    from api.portal.items import PortalActionContext
    from journeys.deal.portal import Registered

__all__ = [
    "CHANGE_STAGE",
    "JOURNEY",
    "DealForm",
    "DealRef",
    "DealStage",
    "DealState",
    "OpenDeal",
    "StageChange",
    "lock_deal",
    "open_pipeline",
    "won_by_mdf_request",
    "won_deals",
    "deal_partner",
    "normalize_company_name",
    "normalize_domain",
    "protecting_partner",
    "register_from_portal",
    "registrations_by_partner",
]


@dataclass(frozen=True)
class DealRef:
    id: uuid.UUID
    partner_id: uuid.UUID
    state: DealState


async def lock_deal(session: AsyncSession, deal_id: uuid.UUID) -> DealRef | None:
    """The deal, its row locked until the transaction ends (None: no such deal)."""
    deal = await session.get(Deal, deal_id, with_for_update=True)
    return None if deal is None else DealRef(id=deal.id, partner_id=deal.partner_id, state=DealState(deal.state))


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


def won_deals() -> Subquery:
    """The closed-won deals: a subquery of (`id`, `amount_minor`, `currency`) for a reader to join
    (e.g. the leads journey's attribution of won revenue to the lead that a deal was credited to)."""
    return select(Deal.id, Deal.amount_minor, Deal.currency).where(Deal.state == DealState.won.value).subquery()


def registrations_by_partner() -> Subquery:
    """Each partner's deal registrations: a subquery of (`partner_id`, `first_at`, `last_at`,
    `registered`) for a reader to join (program figures: time to first deal, active partners)."""
    return (
        select(
            Deal.partner_id,
            func.min(Deal.created_at).label("first_at"),
            func.max(Deal.created_at).label("last_at"),
            func.count().label("registered"),
        )
        .group_by(Deal.partner_id)
        .subquery()
    )


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


Line = Annotated[str, Form(max_length=260), SCREEN_LINE]


async def deal_form(
    customer_name: Line = "",
    customer_domain: Line = "",
    product_category: Line = "",
    amount: Line = "",
    currency: Line = "",
    expected_close_date: Line = "",
    stage: Line = "qualification",
) -> dict[str, str]:
    """The fields of a deal registration form in the partner portal (`DealForm`): the deals page's
    and an accepted lead's. A coroutine: FastAPI runs a plain function or class dependency in its
    thread pool, a hop per request (tests/contract/test_no_thread_hops.py)."""
    return {
        "customer_name": customer_name,
        "customer_domain": customer_domain,
        "product_category": product_category,
        "amount": amount,
        "currency": currency,
        "expected_close_date": expected_close_date,
        "stage": stage,
    }


DealForm = Annotated[dict[str, str], Depends(deal_form)]


async def register_from_portal(ctx: PortalActionContext, form: dict[str, str]) -> Registered | str:
    """Register a deal from a portal form's fields as the signed-in partner (the API's service): the
    deal's id and state, or the form's refusal in words."""
    from journeys.deal import portal  # when used: the portal module is the API's (it imports api.portal)

    return await portal.register_form(ctx, form)
