"""MDF's signals for partner health (its manifest's `health_signals`): a fund expiring within
the policy's `health.mdf_unused_days` with money not yet used (severity: the share unused)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.policy import ProgramPolicy
from journeys.health.contract import Signal
from journeys.mdf.ledger import fund_balances
from journeys.mdf.models import MdfFund

# Its event types that move these signals (each changes what a fund has left unused): publishing one refreshes
# the partner's health at once (the manifest's `health_events`).
MOVED_BY = frozenset(
    ("mdf.requested", "mdf.rejected", "mdf.claim_approved", "mdf.claim_denied", "mdf.paid", "mdf.expired")
)


async def health_signals(
    session: AsyncSession, partner_id: uuid.UUID, now: datetime, policy: ProgramPolicy
) -> list[Signal]:
    soon = now + policy.days(policy.health.mdf_unused_days)
    out = []
    funds = await session.scalars(
        select(MdfFund).where(MdfFund.partner_id == partner_id, MdfFund.expires_at > now, MdfFund.expires_at <= soon)
    )
    for fund in funds:
        b = await fund_balances(session, fund.id)
        if b.funded > 0 and b.available > 0:
            out.append(
                Signal(
                    kind="mdf_unused",
                    key=f"mdf:{fund.period}",
                    severity=min(1.0, b.available / b.funded),
                    what=f"MDF {fund.period}: {b.available / 100:,.2f} {fund.currency} unused, expires on "
                    f"{fund.expires_at:%Y-%m-%d}",
                )
            )
    return out
