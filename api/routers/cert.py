"""The certification renewal journey's API: record (starts `cert-{id}`), renew, and the views
of a partner's certifications and of a portfolio's expiring ones."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import Principal, require_roles, scope_to_principal
from api.deps import get_principal, get_session, get_settings_dep, get_temporal
from api.idempotency import Idempotency
from api.journeys import compensate_start, run_update, start_cert
from api.routers.partners import load_partner
from api.schemas import CertCreate, CertOut, RenewalBody
from domain.cert import CertState, Renewal, RenewalResult
from domain.enums import Journey, Role
from domain.journeys import workflow_id
from core.settings import Settings
from store import repo
from store.models import Certification, JourneyRecord, Partner
from workflows.cert import CertWorkflow

router = APIRouter(tags=["certifications"])
log = logging.getLogger(__name__)


@router.post("/certifications", status_code=201, response_model=CertOut)
async def record_certification(
    body: CertCreate,
    request: Request,
    principal: Principal = Depends(require_roles(Role.ops)),
    session: AsyncSession = Depends(get_session),
    temporal: Client = Depends(get_temporal),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
):
    """Record a certification earned by one of a partner's people (ops, or an LMS with an ops key)
    and start its `cert-{id}` journey."""
    if body.expires_at <= body.issued_at:
        raise HTTPException(422, detail="expires_at: must be after issued_at")
    if body.expires_at <= datetime.now(timezone.utc):
        raise HTTPException(422, detail="expires_at: the certification has already expired")
    partner = await load_partner(session, body.partner_id, principal)
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)
    if (replayed := await idem.replay()) is not None:
        return replayed
    policy_version = (await repo.current_policy(session)).version  # pinned for the first period
    cert = Certification(id=uuid.uuid4(), state=CertState.active.value, restricted=False, period=1,
                         created_by=principal.actor, **body.model_dump())
    session.add(cert)
    session.add(JourneyRecord(workflow_id=workflow_id(Journey.cert, str(cert.id)), partner_id=partner.id,
                              journey=Journey.cert.value, state=CertState.active.value))
    await repo.claim_step(session, key=None, actor=principal.actor, action="cert.recorded", partner_id=partner.id,
                          journey=Journey.cert.value,
                          detail={"cert_id": str(cert.id), "track": body.track, "category": body.product_category,
                                  "expires_at": body.expires_at.isoformat()})
    await session.flush()
    await session.refresh(cert)
    out = jsonable_encoder(CertOut.model_validate(cert))
    await idem.remember(201, out)
    await session.commit()
    try:
        await start_cert(temporal, settings.task_queue, cert, partner, policy_version)
    except Exception as err:  # compensate: no certification without its journey
        log.exception("starting cert journey %s failed; removing the record", cert.id)
        await compensate_start(session, idem, model=Certification, entity_id=cert.id, journey=Journey.cert,
                               detail_key="cert_id")
        raise HTTPException(503, detail=f"could not start the certification journey ({err}); nothing was "
                                        "recorded, retry later") from err
    return JSONResponse(status_code=201, content=out)


@router.post("/certifications/{cert_id}/renewals", response_model=RenewalResult)
async def renew_certification(cert_id: uuid.UUID, body: RenewalBody,
                              principal: Principal = Depends(require_roles(Role.ops)),
                              session: AsyncSession = Depends(get_session),
                              temporal: Client = Depends(get_temporal)):
    """Record a renewal: the new expiry, entitlements restored, the journey's next period."""
    if await session.get(Certification, cert_id) is None:
        raise HTTPException(404, detail=f"no certification with id {cert_id}")
    return await run_update(temporal, Journey.cert, cert_id, CertWorkflow.renew,
                            Renewal(expires_at=body.expires_at, by=principal.actor))


@router.get("/partners/{partner_id}/certifications", response_model=list[CertOut])
async def partner_certifications(partner_id: uuid.UUID, principal: Principal = Depends(get_principal),
                                 session: AsyncSession = Depends(get_session)):
    partner = await load_partner(session, partner_id, principal)
    return (await session.scalars(select(Certification).where(Certification.partner_id == partner.id)
                                  .order_by(Certification.expires_at, Certification.id))).all()


@router.get("/certifications", response_model=list[CertOut])
async def list_certifications(
    principal: Principal = Depends(get_principal),
    session: AsyncSession = Depends(get_session),
    expiring_within_days: float | None = Query(None, gt=0, le=3650),
    state: CertState | None = None,
    cam_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=1000),
):
    """Certifications, e.g. a CAM's portfolio view of those expiring within N days (a CAM sees
    only its partners, a partner only itself)."""
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
    return (await session.scalars(stmt.limit(limit))).all()
