"""Partner portal users the platform writes outside the portal: the primary contact becomes the
partner's first admin at enrolment (api/partners/service.py), in the enrolment's transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Partner
from store.models.portal import PartnerUser

ADMIN = "admin"  # api/portal/team.py TeamRole.admin


async def add_contact_admin(session: AsyncSession, partner: Partner, actor: str) -> None:
    """The partner's primary contact as its admin (at enrolment, in its transaction). An address
    already a user of another partner stays theirs: one address, one partner."""
    email = partner.contact_email.lower()
    # One statement: the unique address decides (an address already taken is left as it is).
    await session.execute(
        insert(PartnerUser)
        .values(
            id=uuid.uuid4(),
            partner_id=partner.id,
            name=email.split("@")[0],
            email=email,
            role=ADMIN,
            language="en",
            time_zone="UTC",
            created_by=actor,
        )
        .on_conflict_do_nothing(index_elements=["email"])
    )
