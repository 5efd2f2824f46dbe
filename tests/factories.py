"""Rows a test needs, written through the real models (no mocks of our own stack)."""
from __future__ import annotations

import uuid

from domain.enums import PartnerStatus, Tier
from store.models import Cam, Partner


async def make_cam(sessionmaker, name: str = "Casey CAM", email: str | None = None) -> Cam:
    cam = Cam(name=name, email=email or f"cam-{uuid.uuid4().hex[:8]}@vendor.test")
    async with sessionmaker() as session, session.begin():
        session.add(cam)
    return cam


async def make_partner(sessionmaker, *, tier: Tier, cam: Cam | None = None, name: str = "Acme Networks",
                       contact: str | None = None) -> Partner:
    slug = uuid.uuid4().hex[:8]
    partner = Partner(
        name=name, domain=f"{slug}.acme.test", country="DE", type="reseller", tier=tier.value,
        cam_id=cam.id if cam else None, contact_email=contact or f"owner-{slug}@acme.test",
        status=PartnerStatus.onboarding.value,
    )
    async with sessionmaker() as session, session.begin():
        session.add(partner)
    return partner


async def make_deal(sessionmaker, partner: Partner, *, customer: str = "Globex Corporation",
                    domain: str = "globex.test", category: str = "network", amount_minor: int = 500_000,
                    currency: str = "USD", state: str = "pending_approval"):
    from datetime import date

    from domain.deal import normalize_company_name
    from store.models import Deal

    deal = Deal(partner_id=partner.id, customer_name=customer, customer_domain=domain, customer_key=domain,
                customer_name_key=normalize_company_name(customer), product_category=category,
                amount_minor=amount_minor, currency=currency, expected_close_date=date(2027, 3, 31),
                stage="qualification", state=state, extensions_used=0, created_by=f"partner:{partner.id}")
    async with sessionmaker() as session, session.begin():
        session.add(deal)
    return deal


def deal_input(deal, partner: Partner, *, conflict_with: str | None = None):
    from domain.deal import DealInput
    from domain.journeys import Coverage

    return DealInput(deal_id=str(deal.id), partner_id=str(partner.id), partner_name=partner.name,
                     coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
                     customer_name=deal.customer_name, product_category=deal.product_category,
                     amount_minor=deal.amount_minor, currency=deal.currency, stage=deal.stage, state=deal.state,
                     conflict_with=conflict_with)


async def make_cert(sessionmaker, partner: Partner, *, expires_at, track: str = "Network Associate",
                    category: str = "network", person: str = "Pat Engineer"):
    from datetime import timedelta

    from store.models import Certification

    cert = Certification(partner_id=partner.id, person_name=person,
                         person_email=f"{person.split()[0].lower()}@{partner.domain}", track=track,
                         product_category=category, issued_at=expires_at - timedelta(days=365), expires_at=expires_at,
                         state="active", restricted=False, period=1, created_by="ops:test")
    async with sessionmaker() as session, session.begin():
        session.add(cert)
    return cert


def cert_input(cert, partner: Partner):
    from domain.cert import CertInput
    from domain.journeys import Coverage

    return CertInput(cert_id=str(cert.id), partner_id=str(partner.id), partner_name=partner.name,
                     coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
                     person_name=cert.person_name, person_email=cert.person_email, track=cert.track,
                     product_category=cert.product_category, expires_at=cert.expires_at)
