"""The certification renewal journey's API: record (starts `cert-{id}`), renew, and the views
of a partner's certifications and of a portfolio's expiring ones."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from api import journeys, pagination
from api.deps import CreationDep, OpsDep, PartnerDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep, load_partner
from api.openapi import IDEMPOTENCY_409, START_503, UPDATE
from api.routemeta import route_meta
from journeys.cert import service
from journeys.cert.domain import JOURNEY, CertState, RenewalResult
from journeys.cert.schemas import CertCreate, CertOut, RenewalBody

router = APIRouter(tags=["certifications"])


@router.post(
    "/certifications",
    status_code=201,
    response_model=CertOut,
    openapi_extra=route_meta(
        {404: "no partner with this partner_id", 409: IDEMPOTENCY_409, 503: START_503},
        business_rule="expires_at must be after issued_at and in the future (time-dependent)",
    ),
)
async def record_certification(body: CertCreate, principal: OpsDep, ctx: CreationDep):
    """Record a certification earned by one of a partner's people (ops, or an LMS with an ops key)
    and start its `cert-{id}` journey."""
    partner = await load_partner(ctx.session, body.partner_id, principal)
    return await journeys.created(ctx, body, JOURNEY, lambda idem: service.record(ctx, body, partner, idem))


@router.post(
    "/certifications/{cert_id}/renewals",
    response_model=RenewalResult,
    openapi_extra=route_meta(
        {
            409: "a renewal is already being applied, or the journey is not running",
            **UPDATE,
        },
        business_rule="the new expiry must be after the current one and in the future",
    ),
)
async def renew_certification(
    cert_id: uuid.UUID,
    body: RenewalBody,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Record a renewal: the new expiry, entitlements restored, the journey's next period."""
    return await service.renew(
        session, temporal, principal, cert_id, body.expires_at, deadline=settings.update_deadline_seconds
    )


@router.get("/certifications/{cert_id}", response_model=CertOut)
async def get_certification(cert_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    """One certification: its state, expiry and period (ops, the partner's CAM, the partner)."""
    return await service.cert_for(session, cert_id, principal)


@router.get("/partners/{partner_id}/certifications", response_model=list[CertOut])
async def partner_certifications(partner: PartnerDep, session: SessionDep):
    return await service.for_partner(session, partner)


@router.get(
    "/certifications", response_model=list[CertOut], openapi_extra=route_meta({404: "`after` names no certification"})
)
async def list_certifications(
    principal: PrincipalDep,
    session: SessionDep,
    expiring_within_days: float | None = Query(None, gt=0, le=3650),
    state: CertState | None = None,
    cam_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=1000),
    after: uuid.UUID | None = pagination.AFTER,
):
    """Certifications, e.g. a CAM's portfolio view of those expiring within N days (a CAM sees
    only its partners, a partner only itself)."""
    return await service.list_certifications(
        session,
        principal,
        expiring_within_days=expiring_within_days,
        state=state,
        cam_id=cam_id,
        limit=limit,
        after=after,
    )
