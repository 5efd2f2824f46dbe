"""Rows and inputs of the QBR journey's tests, written through the real models (or, for the
cycle over hundreds of partners, in one SQL statement)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import text

from domain.journeys import Coverage
from journeys.cert.models import Certification
from journeys.deal.models import Deal
from journeys.qbr.domain import QbrInput
from journeys.qbr.models import QbrTarget
from store import repo
from store.models import Partner


async def make_deal(sessionmaker, partner: Partner, *, amount_minor: int, state: str, at: datetime) -> Deal:
    """A deal registered and last moved at `at` (closed-won at `at` when `state` is won)."""
    deal = Deal(
        partner_id=partner.id,
        customer_name=f"Customer {uuid.uuid4().hex[:6]}",
        customer_domain="globex.com",
        customer_key=f"globex-{uuid.uuid4().hex[:6]}.com",
        customer_name_key="globex",
        product_category="network",
        amount_minor=amount_minor,
        currency="USD",
        expected_close_date=date(2027, 3, 31),
        stage="closed_won" if state == "won" else "proposal",
        state=state,
        created_by="partner:test",
        created_at=at,
        updated_at=at,
    )
    async with sessionmaker() as session, session.begin():
        session.add(deal)
    return deal


async def make_cert(sessionmaker, partner: Partner, *, at: datetime, track: str = "Network Associate") -> Certification:
    cert = Certification(
        partner_id=partner.id,
        person_name="Pat Engineer",
        person_email=f"pat@{partner.domain}",
        track=track,
        product_category="network",
        issued_at=at - timedelta(days=30),
        expires_at=at + timedelta(days=700),
        state="active",
        restricted=False,
        period=1,
        created_by="ops:test",
    )
    async with sessionmaker() as session, session.begin():
        session.add(cert)
    return cert


async def set_target(sessionmaker, partner: Partner, period: str, amount_minor: int) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(
            QbrTarget(
                partner_id=partner.id, period=period, amount_minor=amount_minor, currency="USD", set_by="ops:test"
            )
        )


async def save_policy(sessionmaker, policy) -> int:
    async with sessionmaker() as session, session.begin():
        return await repo.save_policy(session, policy, created_by="test")


def qbr_input(partner: Partner, period: str, cycle_id: str | None = None) -> QbrInput:
    return QbrInput(
        partner_id=str(partner.id),
        partner_name=partner.name,
        coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
        period=period,
        cycle_id=cycle_id,
    )


async def seed_partners(sessionmaker, n: int, tier: str = "registered") -> None:
    """`n` partners in one statement (the cycle tests need hundreds, quickly)."""
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "insert into partners (id, name, domain, country, type, tier, contact_email, status) "
                "select gen_random_uuid(), 'Partner ' || i, 'p' || i || '.seed.test', 'DE', 'reseller', :tier, "
                "'owner@p' || i || '.seed.test', 'active' from generate_series(1, :n) as i"
            ),
            {"n": n, "tier": tier},
        )
