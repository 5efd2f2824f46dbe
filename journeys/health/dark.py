"""When a partner last did something: its own last action in the audit trail (actor
`partner:<id>`: a deal registered, a lead accepted, a claim filed...), its last portal sign-in,
or else its enrolment. A partner with nothing for `health.dark_days` is dark (journeys/health/
domain.py `is_dark`); the program figures count them all at once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from store.models import AuditEvent, Partner
from store.models.portal import PartnerUser, PortalSession


def last_active_column() -> ColumnElement[datetime]:
    """The last activity of `Partner` (a correlated expression, for one partner or all)."""
    acted = (
        select(func.max(AuditEvent.at))
        .where(  # the partner as an actor (domain/actors.py): partner:<id>
            AuditEvent.partner_id == Partner.id, AuditEvent.actor == func.concat("partner:", Partner.id)
        )
        .scalar_subquery()
    )
    signed_in = (
        select(func.max(PortalSession.created_at))
        .join(PartnerUser, PartnerUser.id == PortalSession.user_id)
        .where(PartnerUser.partner_id == Partner.id)
        .scalar_subquery()
    )
    return func.greatest(Partner.created_at, acted, signed_in)


async def last_active(session: AsyncSession, partner_id: uuid.UUID) -> datetime | None:
    return await session.scalar(select(last_active_column()).where(Partner.id == partner_id))
