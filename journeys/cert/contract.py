"""What other journeys and the platform may use of the certification journey: small reads of
its certifications (plain values, never its tables), and two SQL conditions another journey's
query may embed (lead routing's candidates)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Subquery, exists, func, select
from sqlalchemy.orm import aliased

from journeys.cert.models import Certification


def restricting_lapse_of(partner_id: ColumnElement, category: ColumnElement) -> Subquery:
    """SQL: the partner's latest lapsed (restricted) certification in the category, unless another
    of its certifications in that category is current: a subquery of at most one row (`id`,
    `track`, `person_name`, `expires_at`; none: registration is not restricted), for the deal
    registration's first read."""
    current = aliased(Certification)
    return (
        select(Certification.id, Certification.track, Certification.person_name, Certification.expires_at)
        .where(
            Certification.partner_id == partner_id,
            Certification.product_category == category,
            Certification.restricted.is_(True),
            ~exists().where(
                current.partner_id == partner_id,
                current.product_category == category,
                current.restricted.is_(False),
            ),
        )
        .order_by(Certification.expires_at.desc())
        .limit(1)
        .subquery("lapse")
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
