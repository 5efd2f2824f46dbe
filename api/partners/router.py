"""Partners: enrolment (starts onboarding), coverage changes, the read model and the timeline."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import journeys, pagination
from api.auth import scope_to_principal
from api.deps import CreationDep, OpsDep, PartnerDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.openapi import IDEMPOTENCY_409, START_503
from api.partners import service
from api.partners.schemas import PartnerCreate, PartnerDetail, PartnerOut, PartnerUpdate, TimelineEntry
from api.routemeta import route_meta
from domain.enums import PartnerStatus, Tier
from journeys.onboarding import contract as onboarding
from store.models import AuditEvent, Partner

router = APIRouter(prefix="/partners", tags=["partners"])
CAPACITY_409 = "would be beyond capacity (policy health.coverage, max_partners_per_cam) without override_capacity"


@router.post(
    "",
    status_code=201,
    response_model=PartnerOut,
    responses={409: {"description": "a partner with this domain is already enrolled"}},
    openapi_extra=route_meta(
        {409: f"a partner with this domain is enrolled, the CAM {CAPACITY_409}, or {IDEMPOTENCY_409}", 503: START_503},
        business_rule="the tier's policy decides whether a CAM is needed; cam_id must name a CAM",
    ),
)
async def enrol_partner(body: PartnerCreate, principal: OpsDep, ctx: CreationDep):
    """Enrol a partner and start its `onboarding-{partner_id}` journey."""
    return await journeys.created(ctx, body, onboarding.JOURNEY, lambda idem: service.enrol(ctx, body, idem))


@router.get("", response_model=list[PartnerOut], openapi_extra=route_meta({404: "`after` names no partner"}))
async def list_partners(
    principal: PrincipalDep,
    session: SessionDep,
    tier: Tier | None = None,
    cam_id: uuid.UUID | None = None,
    partner_status: PartnerStatus | None = Query(None, alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    after: uuid.UUID | None = pagination.AFTER,
):
    stmt = scope_to_principal(select(Partner).order_by(Partner.created_at, Partner.id), principal, Partner.id)
    stmt = await pagination.after(session, stmt, after, Partner.created_at, Partner.id)
    if tier:
        stmt = stmt.where(Partner.tier == tier.value)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if partner_status:
        stmt = stmt.where(Partner.status == partner_status.value)
    return (await session.scalars(stmt.limit(limit).offset(offset))).all()


@router.get("/{partner_id}", response_model=PartnerDetail)
async def get_partner(partner: PartnerDep, session: SessionDep):
    """Status, onboarding milestones and the state of each journey."""
    return await service.detail(session, partner)


@router.patch(
    "/{partner_id}",
    response_model=PartnerOut,
    openapi_extra=route_meta(
        {
            409: f"the CAM {CAPACITY_409}, or the partner is being handed over to another CAM",
            503: "the coverage change was stored; telling its journeys failed",
        },
        business_rule="the same coverage rules as enrolment",
    ),
)
async def change_coverage(
    partner: PartnerDep,
    body: PartnerUpdate,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Change a partner's tier and/or CAM; running journeys and their search attributes follow; a
    new tier is published to webhook subscribers (`partner.tier_changed`)."""
    return await service.change_coverage(session, temporal, principal, partner, body, task_queue=settings.task_queue)


@router.get(
    "/{partner_id}/timeline",
    response_model=list[TimelineEntry],
    openapi_extra=route_meta({404: "`after` names no entry of the timeline"}),
)
async def timeline(
    partner: PartnerDep,
    session: SessionDep,
    limit: int = Query(100, ge=1, le=1000),
    after: int | None = Query(
        None, ge=1, le=2**63 - 1, description="keyset pagination: the id of the last entry of the previous page"
    ),
):
    """The audit trail of every state change, oldest first: who, what, when (100 a page; the
    next page `?after=<id of the last entry>`)."""
    stmt = select(AuditEvent).where(AuditEvent.partner_id == partner.id).order_by(AuditEvent.at, AuditEvent.id)
    stmt = await pagination.after(session, stmt, after, AuditEvent.at, AuditEvent.id)
    return (await session.scalars(stmt.limit(limit))).all()
