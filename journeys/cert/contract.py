"""What other journeys and the platform may use of the certification journey: small reads of
its certifications (plain values, never its tables), and two SQL conditions another journey's
query may embed (lead routing's candidates)."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from journeys.cert.models import Certification


class LapsedCertification(BaseModel):
    """A partner's lapsed certification that restricts deal registration in its category."""

    id: uuid.UUID
    track: str
    person_name: str
    expires_at: datetime


async def restricting_lapse(session: AsyncSession, partner_id: uuid.UUID, category: str) -> LapsedCertification | None:
    """The partner's latest lapsed (restricted) certification in the category, unless another of
    its certifications in that category is current (None: registration is not restricted). One
    statement, built once: every deal registration asks."""
    row = (await session.execute(_restricting_lapse(), {"partner_id": partner_id, "category": category})).first()
    return None if row is None else LapsedCertification.model_validate(row._mapping)


@functools.cache
def _restricting_lapse() -> Select:
    partner_id = bindparam("partner_id", type_=Certification.partner_id.type)
    of_category = (Certification.partner_id == partner_id, Certification.product_category == bindparam("category"))
    current = aliased(Certification)
    return (
        select(Certification.id, Certification.track, Certification.person_name, Certification.expires_at)
        .where(*of_category, Certification.restricted.is_(True))
        .where(
            ~exists().where(
                current.partner_id == partner_id,
                current.product_category == Certification.product_category,
                current.restricted.is_(False),
            )
        )
        .order_by(Certification.expires_at.desc())
        .limit(1)
    )


def _current(partner_id: Any) -> tuple[ColumnElement[bool], ...]:
    """A current certification of the partner: not restricted (active, or expired within the
    policy's grace period)."""
    return Certification.partner_id == partner_id, Certification.restricted.is_(False)


def certified_in(partner_id: Any, category: str) -> ColumnElement[bool]:
    """SQL: the partner (a column, e.g. `partners.id`) holds a current certification in the
    product category."""
    return exists().where(*_current(partner_id), Certification.product_category == category)


def certified_categories(partner_id: Any) -> Any:
    """SQL: the product categories in which the partner (a column) holds a current certification
    (an array; NULL for none)."""
    categories = func.array_agg(func.distinct(Certification.product_category))
    return select(categories).where(*_current(partner_id)).scalar_subquery()
