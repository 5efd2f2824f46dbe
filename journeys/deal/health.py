"""Deal registration's signals for partner health (its manifest's `health_signals`): fewer
registrations than the policy's goal in its window, and a win rate under its goal."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.policy import ProgramPolicy
from journeys.deal.domain import DealState
from journeys.deal.models import Deal
from journeys.health.contract import Signal
from store.models import Partner

# Its event types that move these signals (a registration counts for the velocity, a deal closed for the win
# rate): publishing one refreshes the partner's health at once (the manifest's `health_events`).
MOVED_BY = frozenset(("deal.registered", "deal.won", "deal.lost"))


async def health_signals(
    session: AsyncSession, partner_id: uuid.UUID, now: datetime, policy: ProgramPolicy
) -> list[Signal]:
    h = policy.health
    since = now - policy.days(h.velocity_days)
    out = []
    partner = await session.get(Partner, partner_id)
    registered = await session.scalar(
        select(func.count()).where(Deal.partner_id == partner_id, Deal.created_at >= since)
    )
    if partner is not None and partner.created_at <= since and h.velocity_goal and (registered or 0) < h.velocity_goal:
        out.append(
            Signal(
                kind="deal_velocity_low",
                key="deal:velocity",
                severity=1 - (registered or 0) / h.velocity_goal,
                what=f"{registered} deal registrations in {h.velocity_days:g} days (goal {h.velocity_goal})",
            )
        )
    closed = dict(
        (
            await session.execute(
                select(Deal.state, func.count())
                .where(Deal.partner_id == partner_id, Deal.state.in_([DealState.won.value, DealState.lost.value]))
                .where(Deal.updated_at >= since)
                .group_by(Deal.state)
            )
        ).all()
    )
    won, lost = closed.get(DealState.won.value, 0), closed.get(DealState.lost.value, 0)
    if won + lost and h.win_rate_goal and won / (won + lost) < h.win_rate_goal:
        rate = won / (won + lost)
        out.append(
            Signal(
                kind="win_rate_low",
                key="deal:win_rate",
                severity=1 - rate / h.win_rate_goal,
                what=f"win rate {rate:.0%} over {h.velocity_days:g} days (goal {h.win_rate_goal:.0%})",
            )
        )
    return out
