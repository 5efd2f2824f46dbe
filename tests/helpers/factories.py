"""Rows every journey's tests need (CAMs, partners), written through the real models (no mocks
of our own stack). Each journey's own rows: tests/<journey>/factories.py."""

from __future__ import annotations

import uuid

from domain.enums import PartnerStatus, Tier
from store.models import Cam, Partner


async def make_cam(sessionmaker, name: str = "Casey CAM", email: str | None = None) -> Cam:
    cam = Cam(name=name, email=email or f"cam-{uuid.uuid4().hex[:8]}@vendor.test")
    async with sessionmaker() as session, session.begin():
        session.add(cam)
    return cam


async def make_partner(
    sessionmaker, *, tier: Tier, cam: Cam | None = None, name: str = "Acme Networks", contact: str | None = None
) -> Partner:
    slug = uuid.uuid4().hex[:8]
    partner = Partner(
        name=name,
        domain=f"{slug}.acme.test",
        country="DE",
        type="reseller",
        tier=tier.value,
        cam_id=cam.id if cam else None,
        contact_email=contact or f"owner-{slug}@acme.test",
        status=PartnerStatus.onboarding.value,
    )
    async with sessionmaker() as session, session.begin():
        session.add(partner)
    return partner
