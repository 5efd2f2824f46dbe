"""The certification renewal journey's service: recording a certification (starts
`cert-{id}`), renewals (a workflow update), and the views of certifications."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys, pagination
from api.auth import Principal, scope_to_principal
from api.deps import Creation, load_partner
from api.idempotency import Idempotency
from domain.errors import Invalid, NotFound
from journeys.cert.domain import JOURNEY, RENEW, CertInput, CertState, Renewal, RenewalResult
from journeys.cert.models import Certification
from journeys.cert.schemas import CertCreate, CertOut
from store import repo
from store.models import Partner


async def record(
    ctx: Creation,
    body: CertCreate,
    partner: Partner,
    idem: Idempotency,
) -> dict:
    """The certification, its journey record and the audit row in one transaction, then `cert-{id}`."""
    session, principal = ctx.session, ctx.principal
    if body.expires_at <= body.issued_at:
        raise Invalid("expires_at: must be after issued_at")
    if body.expires_at <= datetime.now(UTC):
        raise Invalid("expires_at: the certification has already expired")
    policy_version = (await repo.current_policy(session)).version  # pinned for the first period
    cert = Certification(
        id=uuid.uuid4(),
        state=CertState.active.value,
        restricted=False,
        period=1,
        created_by=principal.actor,
        **body.model_dump(),
    )
    start = journeys.start_input(CertInput, cert, partner, cert_id=str(cert.id), policy_version=policy_version)
    detail = {
        "cert_id": str(cert.id),
        "track": body.track,
        "category": body.product_category,
        "expires_at": body.expires_at.isoformat(),
    }
    new = journeys.NewJourney(JOURNEY, cert, partner.id, CertState.active.value, start, "cert.recorded", detail)
    return await journeys.create_and_start(ctx, new, answer=CertOut, idem=idem, what="recorded")


async def renew(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    cert_id: uuid.UUID,
    expires_at: datetime,
    *,
    deadline: float,
) -> RenewalResult:
    if await session.get(Certification, cert_id) is None:
        raise NotFound(f"no certification with id {cert_id}")
    await session.close()  # hold no connection while the journey answers
    return await journeys.run_update(
        client,
        JOURNEY,
        cert_id,
        RENEW,
        Renewal(expires_at=expires_at, by=principal.actor),
        RenewalResult,
        deadline=deadline,
        progress=f"/certifications/{cert_id}",
    )


async def cert_for(session: AsyncSession, cert_id: uuid.UUID, principal: Principal) -> Certification:
    """The certification (404), if the caller may see its partner (403)."""
    cert = await session.get(Certification, cert_id)
    if cert is None:
        raise NotFound(f"no certification with id {cert_id}")
    await load_partner(session, cert.partner_id, principal)
    return cert


async def for_partner(session: AsyncSession, partner: Partner) -> list[Certification]:
    return list(
        (
            await session.scalars(
                select(Certification)
                .where(Certification.partner_id == partner.id)
                .order_by(Certification.expires_at, Certification.id)
            )
        ).all()
    )


async def list_certifications(
    session: AsyncSession,
    principal: Principal,
    *,
    expiring_within_days: float | None,
    state: CertState | None,
    cam_id: uuid.UUID | None,
    limit: int,
    after: uuid.UUID | None = None,
) -> list[Certification]:
    stmt = (
        select(Certification)
        .join(Partner, Partner.id == Certification.partner_id)
        .order_by(Certification.expires_at, Certification.id)
    )
    stmt = scope_to_principal(stmt, principal, Certification.partner_id)
    stmt = await pagination.after(session, stmt, after, Certification.expires_at, Certification.id)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if state:
        stmt = stmt.where(Certification.state == state.value)
    if expiring_within_days is not None:
        until = datetime.now(UTC) + timedelta(days=expiring_within_days)
        stmt = stmt.where(Certification.expires_at <= until, Certification.state == CertState.active.value)
    return list((await session.scalars(stmt.limit(limit))).all())
