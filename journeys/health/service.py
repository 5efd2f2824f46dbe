"""Partner health's reads: the current score with its contributions, the trend with what moved
it, and the open early-warning episode (all from the tables the health journey writes)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.deal.contract import registrations_by_partner
from journeys.health.dark import last_active_column
from journeys.health.domain import Contribution, PartnerFacts, ProgramFigures, program_figures
from journeys.health.models import HealthEpisode, HealthScore
from journeys.health.schemas import EpisodeOut, HealthOut, HealthPoint
from store import repo
from store.models import Partner


async def open_episode(session: AsyncSession, partner: Partner) -> HealthEpisode | None:
    return await session.scalar(
        select(HealthEpisode)
        .where(HealthEpisode.partner_id == partner.id, HealthEpisode.closed_at.is_(None))
        .order_by(HealthEpisode.episode.desc())
        .limit(1)
    )


async def health(session: AsyncSession, partner: Partner) -> HealthOut:
    policy = (await repo.current_policy(session)).policy
    since = datetime.now(UTC) - policy.days(policy.health.trend_days)
    rows = (
        await session.scalars(
            select(HealthScore)
            .where(HealthScore.partner_id == partner.id, HealthScore.at >= since)
            .order_by(HealthScore.id)
        )
    ).all()
    last = rows[-1] if rows else None
    if last is None:  # nothing changed within the window: the latest score holds
        last = await session.scalar(
            select(HealthScore).where(HealthScore.partner_id == partner.id).order_by(HealthScore.id.desc()).limit(1)
        )
    episode = await open_episode(session, partner)
    return HealthOut(
        partner_id=partner.id,
        score=last.score if last else None,
        band=last.band if last else None,
        at=last.at if last else None,
        contributions=[Contribution.model_validate(c) for c in last.contributions] if last else [],
        trend=[
            HealthPoint(
                at=r.at,
                score=r.score,
                band=r.band,
                changes=[Contribution.model_validate(c).line() for c in r.changes],
            )
            for r in rows
        ],
        alerting=EpisodeOut.model_validate(episode, from_attributes=True) if episode else None,
    )


async def program(session: AsyncSession, now: datetime | None = None) -> ProgramFigures:
    """The program figures over every partner now (journeys/health/domain.py `program_figures`)."""
    policy = (await repo.current_policy(session)).policy
    deals = registrations_by_partner()
    rows = await session.execute(
        select(Partner.created_at, last_active_column(), deals.c.first_at, deals.c.last_at).outerjoin(
            deals, deals.c.partner_id == Partner.id
        )
    )
    facts = [
        PartnerFacts(enrolled_at=enrolled, last_active=active, first_deal_at=first, last_deal_at=last)
        for enrolled, active, first, last in rows.all()
    ]
    return program_figures(facts, now or datetime.now(UTC), policy.health, policy.days(1))
