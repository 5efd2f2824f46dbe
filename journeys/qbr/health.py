"""QBR's signals for partner health (its manifest's `health_signals`): action items past due."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.policy import ProgramPolicy
from journeys.health.contract import Signal
from journeys.qbr.models import QbrActionItem


async def health_signals(
    session: AsyncSession, partner_id: uuid.UUID, now: datetime, policy: ProgramPolicy
) -> list[Signal]:
    rows = await session.scalars(
        select(QbrActionItem).where(
            QbrActionItem.partner_id == partner_id,
            QbrActionItem.done_at.is_(None),
            QbrActionItem.cancelled_at.is_(None),
            QbrActionItem.due < now.date(),
        )
    )
    return [
        Signal(
            kind="qbr_action_overdue",
            key=f"qbr:{a.period}:{a.item_no}",
            what=f"QBR action item {a.title!r} ({a.period}) overdue since {a.due:%Y-%m-%d}",
        )
        for a in rows
    ]
