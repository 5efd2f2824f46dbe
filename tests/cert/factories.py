"""Rows and inputs of the certification journey's tests, written through the real models."""

from __future__ import annotations

from datetime import timedelta

from domain.journeys import Coverage
from journeys.cert.domain import CertInput
from journeys.cert.models import Certification
from store.models import Partner


async def make_cert(
    sessionmaker,
    partner: Partner,
    *,
    expires_at,
    track: str = "Network Associate",
    category: str = "network",
    person: str = "Pat Engineer",
):
    cert = Certification(
        partner_id=partner.id,
        person_name=person,
        person_email=f"{person.split()[0].lower()}@{partner.domain}",
        track=track,
        product_category=category,
        issued_at=expires_at - timedelta(days=365),
        expires_at=expires_at,
        state="active",
        restricted=False,
        period=1,
        created_by="ops:test",
    )
    async with sessionmaker() as session, session.begin():
        session.add(cert)
    return cert


def cert_input(cert, partner: Partner):

    return CertInput(
        cert_id=str(cert.id),
        partner_id=str(partner.id),
        partner_name=partner.name,
        coverage=Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None),
        person_name=cert.person_name,
        person_email=cert.person_email,
        track=cert.track,
        product_category=cert.product_category,
        expires_at=cert.expires_at,
    )
