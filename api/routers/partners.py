"""Partners: enrolment (starts onboarding), coverage changes, the read model and the timeline."""
from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import Principal, ensure_partner_access, require_roles, scope_to_principal
from api.deps import get_principal, get_session, get_settings_dep, get_temporal
from api.idempotency import Idempotency
from api.journeys import coverage_of, signal_coverage, start_onboarding
from api.schemas import (
    JourneyOut,
    MilestoneOut,
    PartnerCreate,
    PartnerDetail,
    PartnerOut,
    PartnerUpdate,
    TimelineEntry,
)
from domain.deal import OPEN_STATES
from domain.enums import Journey, OnboardingState, PartnerStatus, Role, Tier
from domain.journeys import workflow_id
from core.settings import Settings
from store import repo
from store.models import AuditEvent, Cam, Certification, Deal, JourneyRecord, Partner, PartnerMilestone

router = APIRouter(prefix="/partners", tags=["partners"])
log = logging.getLogger(__name__)


async def load_partner(session: AsyncSession, partner_id: uuid.UUID, principal: Principal) -> Partner:
    partner = await session.get(Partner, partner_id)
    if partner is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no partner with id {partner_id}")
    ensure_partner_access(principal, partner)
    return partner


async def check_coverage(session: AsyncSession, tier: Tier, cam_id: uuid.UUID | None) -> int:
    """A tier whose policy gives it a CAM needs one; registered partners have none. Returns the
    policy version checked against (the one a journey started now runs on)."""
    current = await repo.current_policy(session)
    rules = current.policy.tiers[tier]
    if rules.has_cam and cam_id is None:
        raise HTTPException(422, detail=f"cam_id: a {tier.value} partner needs a CAM")
    if tier == Tier.registered and cam_id is not None:
        raise HTTPException(422, detail="cam_id: registered partners are self-service and have no CAM")
    if cam_id is not None and await session.get(Cam, cam_id) is None:
        raise HTTPException(422, detail=f"cam_id: no CAM with id {cam_id}")
    return current.version


async def _write_enrolment(session: AsyncSession, principal: Principal, body: PartnerCreate,
                           idem: Idempotency) -> Partner:
    """Partner, journey record, audit row and idempotency record: one transaction."""
    partner = Partner(id=uuid.uuid4(), status=PartnerStatus.onboarding.value, **body.model_dump())
    partner.tier, partner.type = body.tier.value, body.type.value
    session.add(partner)
    await session.flush()
    session.add(JourneyRecord(workflow_id=workflow_id(Journey.onboarding, str(partner.id)),
                              partner_id=partner.id, journey=Journey.onboarding.value,
                              state=OnboardingState.in_progress.value))
    await repo.claim_step(session, key=None, actor=principal.actor, action="partner.enrolled",
                          partner_id=partner.id, detail=jsonable_encoder(body.model_dump()))
    await session.refresh(partner)
    await idem.remember(201, jsonable_encoder(PartnerOut.model_validate(partner)))
    await session.commit()
    return partner


@router.post("", status_code=201, response_model=PartnerOut,
             responses={409: {"description": "a partner with this domain is already enrolled"}})
async def enrol_partner(
    body: PartnerCreate,
    request: Request,
    principal: Principal = Depends(require_roles(Role.ops)),
    session: AsyncSession = Depends(get_session),
    temporal: Client = Depends(get_temporal),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
):
    """Enrol a partner and start its `onboarding-{partner_id}` journey."""
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)
    if (replayed := await idem.replay()) is not None:
        return replayed
    policy_version = await check_coverage(session, body.tier, body.cam_id)
    if existing := await session.scalar(select(Partner.id).where(Partner.domain == body.domain)):
        if (replayed := await idem.replay()) is not None:  # a concurrent retry committed meanwhile
            return replayed
        raise HTTPException(409, detail=f"a partner with domain {body.domain} is already enrolled "
                                        f"(partner {existing})")
    try:
        partner = await _write_enrolment(session, principal, body, idem)
    except IntegrityError:  # a concurrent request won the race for this domain or this key
        await session.rollback()
        if (replayed := await idem.replay()) is not None:
            return replayed
        raise HTTPException(409, detail=f"a partner with domain {body.domain} is already enrolled")
    out = jsonable_encoder(PartnerOut.model_validate(partner))
    try:
        await start_onboarding(temporal, settings.task_queue, partner, policy_version)
    except Exception as err:  # compensate: no partner without its journey
        log.exception("starting onboarding for %s failed; removing the enrolment", partner.id)
        await session.execute(delete(AuditEvent).where(AuditEvent.partner_id == partner.id))
        await session.execute(delete(Partner).where(Partner.id == partner.id))
        await idem.forget()
        await session.commit()
        raise HTTPException(503, detail=f"could not start the onboarding journey ({err}); nothing was "
                                        "enrolled, retry later") from err
    return JSONResponse(status_code=201, content=out)


@router.get("", response_model=list[PartnerOut])
async def list_partners(
    principal: Principal = Depends(get_principal),
    session: AsyncSession = Depends(get_session),
    tier: Tier | None = None,
    cam_id: uuid.UUID | None = None,
    partner_status: PartnerStatus | None = Query(None, alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
):
    stmt = scope_to_principal(select(Partner).order_by(Partner.created_at, Partner.id), principal, Partner.id)
    if tier:
        stmt = stmt.where(Partner.tier == tier.value)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if partner_status:
        stmt = stmt.where(Partner.status == partner_status.value)
    return (await session.scalars(stmt.limit(limit).offset(offset))).all()


@router.get("/{partner_id}", response_model=PartnerDetail)
async def get_partner(partner_id: uuid.UUID, principal: Principal = Depends(get_principal),
                      session: AsyncSession = Depends(get_session)):
    """Status, onboarding milestones and the state of each journey."""
    partner = await load_partner(session, partner_id, principal)
    milestones = (await session.scalars(select(PartnerMilestone).where(PartnerMilestone.partner_id == partner.id)
                                        .order_by(PartnerMilestone.due_at, PartnerMilestone.key))).all()
    journeys = (await session.scalars(select(JourneyRecord).where(JourneyRecord.partner_id == partner.id)
                                      .order_by(JourneyRecord.workflow_id))).all()
    return PartnerDetail(**PartnerOut.model_validate(partner).model_dump(),
                         milestones=[MilestoneOut.model_validate(m) for m in milestones],
                         journeys=[JourneyOut.model_validate(j) for j in journeys])


@router.patch("/{partner_id}", response_model=PartnerOut)
async def change_coverage(
    partner_id: uuid.UUID,
    body: PartnerUpdate,
    principal: Principal = Depends(require_roles(Role.ops)),
    session: AsyncSession = Depends(get_session),
    temporal: Client = Depends(get_temporal),
):
    """Change a partner's tier and/or CAM; running journeys and their search attributes follow."""
    partner = await load_partner(session, partner_id, principal)
    fields = body.model_fields_set
    if not fields:
        raise HTTPException(422, detail="nothing to change: send tier and/or cam_id")
    before = coverage_of(partner)
    tier = body.tier if "tier" in fields and body.tier is not None else Tier(partner.tier)
    cam_id = body.cam_id if "cam_id" in fields else partner.cam_id
    await check_coverage(session, tier, cam_id)
    partner.tier, partner.cam_id = tier.value, cam_id
    after = coverage_of(partner)
    if after == before:
        return PartnerOut.model_validate(partner)
    await repo.claim_step(session, key=None, actor=principal.actor, action="partner.coverage_changed",
                          partner_id=partner.id,
                          detail={"from": before.model_dump(mode="json"), "to": after.model_dump(mode="json")})
    await session.commit()
    await session.refresh(partner)
    open_deals = (await session.scalars(select(Deal.id).where(
        Deal.partner_id == partner.id, Deal.state.in_([s.value for s in OPEN_STATES])))).all()
    certs = (await session.scalars(select(Certification.id).where(Certification.partner_id == partner.id))).all()
    await signal_coverage(temporal, partner, [str(d) for d in open_deals], [str(c) for c in certs])
    return PartnerOut.model_validate(partner)


@router.get("/{partner_id}/timeline", response_model=list[TimelineEntry])
async def timeline(partner_id: uuid.UUID, principal: Principal = Depends(get_principal),
                   session: AsyncSession = Depends(get_session),
                   limit: int = Query(500, ge=1, le=5000)):
    """The audit trail of every state change: who, what, when."""
    partner = await load_partner(session, partner_id, principal)
    rows = await session.scalars(select(AuditEvent).where(AuditEvent.partner_id == partner.id)
                                 .order_by(AuditEvent.at, AuditEvent.id).limit(limit))
    return rows.all()
