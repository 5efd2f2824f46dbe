"""Rows, policies and inputs of partner health's tests, written through the real models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from domain import actors
from domain.journeys import Coverage
from journeys.cert.models import Certification
from journeys.health.domain import HealthInput
from journeys.health.models import HealthEpisode
from store import repo
from store.models import Partner
from tests.cert.factories import make_cert
from tests.helpers.policies import fast_policy


def health_policy(**health):
    """Days of a second; evaluated five times a second; no deal velocity goal (partners are new)."""
    policy = fast_policy(day_seconds=1)
    return policy.model_copy(
        update={
            "health": policy.health.model_copy(
                update={"watch": True, "evaluate_seconds": 0.2, "velocity_goal": 0, **health}
            )
        }
    )


async def save(sessionmaker, policy) -> int:
    async with sessionmaker() as session, session.begin():
        return await repo.save_policy(session, policy, "ops:test")


def health_input(partner: Partner, version: int) -> HealthInput:
    return HealthInput(
        partner_id=str(partner.id),
        partner_name=partner.name,
        policy_version=version,
        coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
    )


async def lapse(sessionmaker, partner: Partner, track: str) -> Certification:
    cert = await make_cert(sessionmaker, partner, expires_at=datetime.now(UTC) - timedelta(days=2), track=track)
    async with sessionmaker() as session, session.begin():
        row = await session.get(Certification, cert.id)
        assert row is not None
        row.state, row.restricted = "lapsed", True
    return cert


async def renew_all(sessionmaker, partner: Partner) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(Certification).where(Certification.partner_id == partner.id))


async def episodes(sessionmaker, partner: Partner) -> list[HealthEpisode]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(HealthEpisode).where(HealthEpisode.partner_id == partner.id).order_by(HealthEpisode.episode)
                )
            ).all()
        )


async def acted(sessionmaker, partner: Partner, at: datetime) -> None:
    """The partner did something of its own at `at` (an audit row with the actor partner:<id>)."""
    async with sessionmaker() as session, session.begin():
        await repo.claim_step(
            session, key=None, actor=actors.partner(partner.id), action="deal.registered", partner_id=partner.id, at=at
        )
