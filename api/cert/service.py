"""The certification renewal journey's service: recording a certification (starts
`cert-{id}`), renewals (a workflow update), and the views of certifications."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from fastapi import HTTPException
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys
from api.auth import Principal, scope_to_principal
from api.cert.schemas import CertCreate, CertOut
from api.idempotency import Idempotency
from domain.cert import JOURNEY, RENEW, CertInput, CertState, Renewal, RenewalResult
from domain.journeys import workflow_id
from store import repo
from store.models import Partner
from store.models.cert import Certification


def cert_workflow_id(cert_id: object) -> str:
    return workflow_id(JOURNEY, cert_id)


async def record(session: AsyncSession, client: Client, task_queue: str, principal: Principal, body: CertCreate,
                 partner: Partner, idem: Idempotency) -> dict:
    """The certification, its journey record and the audit row in one transaction, then `cert-{id}`."""
    if body.expires_at <= body.issued_at:
        raise HTTPException(422, detail="expires_at: must be after issued_at")
    if body.expires_at <= datetime.now(timezone.utc):
        raise HTTPException(422, detail="expires_at: the certification has already expired")
    policy_version = (await repo.current_policy(session)).version  # pinned for the first period
    cert = Certification(id=uuid.uuid4(), state=CertState.active.value, restricted=False, period=1,
                         created_by=principal.actor, **body.model_dump())
    session.add(cert)
    await session.flush()
    wid = await journeys.record_journey(
        session, journey=JOURNEY, entity_id=cert.id, partner_id=partner.id, state=CertState.active.value,
        task_queue=task_queue,
        start_input=CertInput(cert_id=str(cert.id), partner_id=str(partner.id), partner_name=partner.name,
                              coverage=journeys.coverage_of(partner), person_name=cert.person_name,
                              person_email=cert.person_email, track=cert.track,
                              product_category=cert.product_category, expires_at=cert.expires_at,
                              policy_version=policy_version),
        actor=principal.actor, action="cert.recorded",
        detail={"cert_id": str(cert.id), "track": body.track, "category": body.product_category,
                "expires_at": body.expires_at.isoformat()})
    await session.refresh(cert)
    out = jsonable_encoder(CertOut.model_validate(cert))
    await idem.remember(201, out)
    await session.commit()
    await journeys.start_journey(session, client, wid, idem=idem, what="recorded")
    return out


async def renew(session: AsyncSession, client: Client, principal: Principal, cert_id: uuid.UUID,
                expires_at: datetime) -> RenewalResult:
    if await session.get(Certification, cert_id) is None:
        raise HTTPException(404, detail=f"no certification with id {cert_id}")
    await session.close()  # hold no connection while the journey answers
    return await journeys.run_update(client, JOURNEY, cert_id, RENEW, Renewal(expires_at=expires_at, by=principal.actor),
                                     RenewalResult)


async def for_partner(session: AsyncSession, partner: Partner) -> list[Certification]:
    return list((await session.scalars(select(Certification).where(Certification.partner_id == partner.id)
                                       .order_by(Certification.expires_at, Certification.id))).all())


async def list_certifications(session: AsyncSession, principal: Principal, *, expiring_within_days: float | None,
                              state: CertState | None, cam_id: uuid.UUID | None, limit: int) -> list[Certification]:
    stmt = (select(Certification).join(Partner, Partner.id == Certification.partner_id)
            .order_by(Certification.expires_at, Certification.id))
    stmt = scope_to_principal(stmt, principal, Certification.partner_id)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if state:
        stmt = stmt.where(Certification.state == state.value)
    if expiring_within_days is not None:
        until = datetime.now(timezone.utc) + timedelta(days=expiring_within_days)
        stmt = stmt.where(Certification.expires_at <= until, Certification.state == CertState.active.value)
    return list((await session.scalars(stmt.limit(limit))).all())



