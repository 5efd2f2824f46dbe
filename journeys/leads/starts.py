"""The lead journey's own record of its starts (`JourneySpec.own_starts`): a lead has no partner,
so no `journeys` row; it keeps its start input and task queue, and `started_at` once Temporal took
the start. The reconciler (api/journeys.reconcile) starts the leads whose start it never confirmed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.journey import PendingStart
from domain.enums import Tier
from domain.journeys import workflow_id
from journeys.leads.domain import JOURNEY
from journeys.leads.models import Lead
from journeys.leads.workflow import NO_PARTNER, LeadWorkflow

WORKFLOW_TYPE = LeadWorkflow.__name__


def pending_start(lead: Lead) -> PendingStart:
    """What the lead's journey starts with (written with the lead)."""
    assert lead.start_input is not None and lead.task_queue is not None
    return PendingStart(
        journey=JOURNEY,
        workflow_id=workflow_id(JOURNEY, lead.id),
        workflow_type=WORKFLOW_TYPE,
        task_queue=lead.task_queue,
        start_input=lead.start_input,
        partner_id=NO_PARTNER,
        tier=Tier.registered.value,
        state=lead.state,
    )


async def pending(session: AsyncSession, before: datetime, limit: int) -> list[PendingStart]:
    """The leads written before `before` whose start Temporal never confirmed, oldest first."""
    leads = await session.scalars(
        select(Lead)
        .where(Lead.started_at.is_(None), Lead.start_input.is_not(None), Lead.created_at < before)
        .order_by(Lead.created_at)
        .limit(limit)
    )
    return [pending_start(lead) for lead in leads]


async def confirm(session: AsyncSession, wid: str) -> None:
    """Temporal took the start of `leads-<id>`."""
    lead_id = uuid.UUID(wid.removeprefix(f"{JOURNEY}-"))
    await session.execute(
        update(Lead).where(Lead.id == lead_id, Lead.started_at.is_(None)).values(started_at=datetime.now(UTC))
    )
    await session.commit()
