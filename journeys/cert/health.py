"""Certification's signals for partner health (its manifest's `health_signals`): certifications
lapsed, and those expiring within the policy's `health.cert_expiring_days`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.policy import ProgramPolicy
from journeys.cert.domain import CertState
from journeys.cert.models import Certification
from journeys.health.contract import Signal

# Its event types that move these signals (a lapse adds `cert_lapsed`, a renewal takes it (or `cert_expiring`)
# away): publishing one refreshes the partner's health at once (the manifest's `health_events`).
MOVED_BY = frozenset(("certification.lapsed", "certification.renewed"))


async def health_signals(
    session: AsyncSession, partner_id: uuid.UUID, now: datetime, policy: ProgramPolicy
) -> list[Signal]:
    soon = now + policy.days(policy.health.cert_expiring_days)
    out = []
    for c in await session.scalars(select(Certification).where(Certification.partner_id == partner_id)):
        if c.state == CertState.lapsed.value or c.restricted:
            what = f"certification {c.track} lapsed on {c.expires_at:%Y-%m-%d}"
            out.append(Signal(kind="cert_lapsed", key=f"cert:{c.id}", what=what, at=c.expires_at))
        elif c.expires_at <= soon:
            what = f"certification {c.track} expires on {c.expires_at:%Y-%m-%d}"
            out.append(Signal(kind="cert_expiring", key=f"cert:{c.id}", what=what, at=c.expires_at))
    return out
