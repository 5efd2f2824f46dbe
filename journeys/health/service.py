"""Partner health's reads: the current score with its contributions, the trend with what moved
it, and the open early-warning episode (all from the tables the health journey writes)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from journeys.health.domain import Contribution
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
