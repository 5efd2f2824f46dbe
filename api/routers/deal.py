"""The deal registration journey's API: register (with the conflict check), decide, stage
changes, extensions, the read model, and the one-click decision links from email."""
from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal, scope_to_principal
from api.deps import get_principal, get_session, get_settings_dep, get_temporal
from api.idempotency import Idempotency
from api.journeys import compensate_start, run_update, start_deal
from api.routers.partners import load_partner
from api.schemas import DealCreate, DealOut, DecisionBody, ExtensionBody, ExtensionDecisionBody, StageBody
from domain.deal import (
    OPEN_STATES,
    DealDecision,
    DealProgress,
    DealState,
    Decision,
    DecisionResult,
    ExtensionDecision,
    ExtensionRequest,
    ExtensionResult,
    StageChange,
    normalize_company_name,
)
from domain.enums import Journey, Role
from domain.journeys import workflow_id
from domain.links import LinkError, read_token
from domain.policy import ProgramPolicy
from core.settings import Settings
from store import repo
from store.models import Certification, Deal, JourneyRecord, Partner, UsedLink
from workflows.deal import DealWorkflow

router = APIRouter(prefix="/deals", tags=["deals"])
log = logging.getLogger(__name__)
pages = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
                    autoescape=select_autoescape(default=True))

def _lock_id(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


async def _deal_for(session: AsyncSession, deal_id: uuid.UUID, principal: Principal) -> tuple[Deal, Partner]:
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise HTTPException(404, detail=f"no deal with id {deal_id}")
    partner = await load_partner(session, deal.partner_id, principal)
    return deal, partner


def _handle(temporal: Client, deal_id: uuid.UUID):
    return temporal.get_workflow_handle(workflow_id(Journey.deal, str(deal_id)))


# ------------------------------------------------------------------ register


@router.post("", status_code=201, response_model=DealOut,
             responses={409: {"description": "the same partner already registered this deal"}})
async def register_deal(
    body: DealCreate,
    request: Request,
    principal: Principal = Depends(get_principal),
    session: AsyncSession = Depends(get_session),
    temporal: Client = Depends(get_temporal),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
):
    """Register a deal (the partner itself, its CAM or ops) and start `deal-{deal_id}`.
    Another partner's open registration of the same customer and category puts it in
    `conflict_review`; the same partner registering it again is refused with the existing id."""
    partner_id = body.partner_id or principal.partner_id
    if partner_id is None:
        raise HTTPException(422, detail="partner_id: required for cam and ops keys")
    partner = await load_partner(session, partner_id, principal)
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)
    if (replayed := await idem.replay()) is not None:
        return replayed
    current = await repo.current_policy(session)  # pinned: later changes apply to later deals
    hold_reason = await _certification_gate(session, partner, body.product_category, current.policy)
    name_key = normalize_company_name(body.customer_name)
    # Serialize registrations of one customer in one category (by domain and by name), so two
    # simultaneous submissions cannot both find the customer free.
    for lock in sorted({_lock_id(f"d|{body.customer_domain}|{body.product_category}"),
                        _lock_id(f"n|{name_key}|{body.product_category}")}):
        await session.execute(select(func.pg_advisory_xact_lock(lock)))
    if (replayed := await idem.replay()) is not None:
        return replayed
    same_customer = and_(
        Deal.product_category == body.product_category, Deal.state.in_([s.value for s in OPEN_STATES]),
        or_(Deal.customer_key == body.customer_domain, Deal.customer_name_key == name_key))
    own = await session.scalar(select(Deal).where(same_customer, Deal.partner_id == partner.id)
                               .order_by(Deal.created_at).limit(1))
    if own is not None:
        raise HTTPException(409, detail=f"this partner already registered this deal: deal {own.id} "
                                        f"({own.state})")
    other = await session.scalar(select(Deal).where(same_customer, Deal.partner_id != partner.id)
                                 .order_by(Deal.created_at).limit(1))
    amount_minor = int(body.amount * 100)
    deal = Deal(
        id=uuid.uuid4(), partner_id=partner.id, customer_name=body.customer_name,
        customer_domain=body.customer_domain, customer_key=body.customer_domain, customer_name_key=name_key,
        product_category=body.product_category, amount_minor=amount_minor, currency=body.currency,
        expected_close_date=body.expected_close_date, stage=body.stage.value,
        state=(DealState.conflict_review if other else DealState.pending_approval).value,
        conflict_with=other.id if other else None, extensions_used=0, created_by=principal.actor,
    )
    session.add(deal)
    session.add(JourneyRecord(workflow_id=workflow_id(Journey.deal, str(deal.id)), partner_id=partner.id,
                              journey=Journey.deal.value, state=deal.state))
    await repo.claim_step(session, key=None, actor=principal.actor, action="deal.registered",
                          partner_id=partner.id, journey=Journey.deal.value,
                          detail={"deal_id": str(deal.id), "customer": body.customer_name,
                                  "category": body.product_category, "state": deal.state,
                                  "conflict_with": str(other.id) if other else None,
                                  "hold_reason": hold_reason})
    await session.flush()
    await session.refresh(deal)
    out = jsonable_encoder(DealOut.model_validate(deal))
    await idem.remember(201, out)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if (replayed := await idem.replay()) is not None:
            return replayed
        raise
    try:
        await start_deal(temporal, settings.task_queue, deal, partner, conflict_with=other,
                         hold_reason=hold_reason, policy_version=current.version)
    except Exception as err:  # compensate: no deal without its journey
        log.exception("starting deal journey %s failed; removing the registration", deal.id)
        await compensate_start(session, idem, model=Deal, entity_id=deal.id, journey=Journey.deal,
                               detail_key="deal_id")
        raise HTTPException(503, detail=f"could not start the deal journey ({err}); nothing was registered, "
                                        "retry later") from err
    return JSONResponse(status_code=201, content=out)


async def _certification_gate(session: AsyncSession, partner: Partner, category: str,
                              policy: ProgramPolicy) -> str | None:
    """A lapsed certification restricts deal registration in its category (unless another one
    of the partner's certifications in that category is current): refused, or per policy held
    for review (the returned reason)."""
    lapsed = await session.scalar(
        select(Certification).where(Certification.partner_id == partner.id,
                                    Certification.product_category == category,
                                    Certification.restricted.is_(True))
        .order_by(Certification.expires_at.desc()).limit(1))
    if lapsed is None:
        return None
    current = await session.scalar(select(Certification.id).where(
        Certification.partner_id == partner.id, Certification.product_category == category,
        Certification.restricted.is_(False)).limit(1))
    if current is not None:
        return None
    reason = (f"the {lapsed.track} certification of {lapsed.person_name} (certification {lapsed.id}) lapsed "
              f"on {lapsed.expires_at:%Y-%m-%d}")
    if policy.cert.lapse_action == "review":
        return reason
    raise HTTPException(403, detail=f"deal registration in {category} is restricted: {reason}; renew it to "
                                    "register deals in this category")


# ------------------------------------------------------------------ read


@router.get("", response_model=list[DealOut])
async def list_deals(
    principal: Principal = Depends(get_principal),
    session: AsyncSession = Depends(get_session),
    partner_id: uuid.UUID | None = None,
    cam_id: uuid.UUID | None = None,
    state: DealState | None = None,
    expiring_within_days: float | None = Query(None, gt=0, le=3650),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
):
    """Deals, filtered by partner, CAM, state and protection expiring within N days.
    A CAM sees only its portfolio; a partner only itself."""
    stmt = select(Deal).join(Partner, Partner.id == Deal.partner_id).order_by(Deal.created_at, Deal.id)
    stmt = scope_to_principal(stmt, principal, Deal.partner_id)
    if partner_id:
        stmt = stmt.where(Deal.partner_id == partner_id)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if state:
        stmt = stmt.where(Deal.state == state.value)
    if expiring_within_days is not None:
        until = datetime.now(timezone.utc) + timedelta(days=expiring_within_days)
        stmt = stmt.where(Deal.state == DealState.approved.value, Deal.protected_until <= until)
    return (await session.scalars(stmt.limit(limit).offset(offset))).all()


@router.get("/{deal_id}", response_model=DealOut)
async def get_deal(deal_id: uuid.UUID, principal: Principal = Depends(get_principal),
                   session: AsyncSession = Depends(get_session)):
    deal, _ = await _deal_for(session, deal_id, principal)
    return deal


@router.get("/{deal_id}/progress", response_model=DealProgress)
async def deal_progress(deal_id: uuid.UUID, principal: Principal = Depends(get_principal),
                        session: AsyncSession = Depends(get_session), temporal: Client = Depends(get_temporal)):
    """Live state of the journey (workflow query)."""
    await _deal_for(session, deal_id, principal)
    try:
        return await _handle(temporal, deal_id).query(DealWorkflow.progress)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, detail=f"deal {deal_id} has no journey") from err
        raise


# ------------------------------------------------------------------ act


@router.post("/{deal_id}/decision", response_model=DecisionResult)
async def decide(deal_id: uuid.UUID, body: DecisionBody, principal: Principal = Depends(get_principal),
                 session: AsyncSession = Depends(get_session), temporal: Client = Depends(get_temporal)):
    """Approve or reject a pending deal: the partner's CAM, or ops."""
    await _deal_for(session, deal_id, principal)
    if principal.role == Role.partner:
        raise HTTPException(403, detail="a partner cannot decide on its own deal")
    return await run_update(temporal, Journey.deal, deal_id, DealWorkflow.decide,
                         DealDecision(decision=body.decision, reason=body.reason, by=principal.actor))


@router.post("/{deal_id}/stage", status_code=202)
async def change_stage(deal_id: uuid.UUID, body: StageBody, principal: Principal = Depends(get_principal),
                       session: AsyncSession = Depends(get_session), temporal: Client = Depends(get_temporal)):
    """Move an approved deal to another stage; closed_won / closed_lost end the journey."""
    deal, _ = await _deal_for(session, deal_id, principal)
    if deal.state != DealState.approved.value:
        raise HTTPException(409, detail=f"deal is {deal.state}: only an approved deal changes stage")
    try:
        await _handle(temporal, deal_id).signal(DealWorkflow.change_stage,
                                                StageChange(stage=body.stage, by=principal.actor))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(409, detail=f"the journey of deal {deal_id} has ended") from err
        raise
    return {"deal_id": str(deal_id), "stage": body.stage.value, "accepted": True}


@router.post("/{deal_id}/extensions", response_model=ExtensionResult)
async def request_extension(deal_id: uuid.UUID, body: ExtensionBody, principal: Principal = Depends(get_principal),
                            session: AsyncSession = Depends(get_session), temporal: Client = Depends(get_temporal)):
    """Ask for more protection time (bounded count and length; CAM tiers need the CAM)."""
    await _deal_for(session, deal_id, principal)
    return await run_update(temporal, Journey.deal, deal_id, DealWorkflow.request_extension,
                         ExtensionRequest(days=body.days, reason=body.reason, by=principal.actor))


@router.post("/{deal_id}/extensions/decision", response_model=ExtensionResult)
async def decide_extension(deal_id: uuid.UUID, body: ExtensionDecisionBody,
                           principal: Principal = Depends(get_principal),
                           session: AsyncSession = Depends(get_session), temporal: Client = Depends(get_temporal)):
    await _deal_for(session, deal_id, principal)
    if principal.role == Role.partner:
        raise HTTPException(403, detail="a partner cannot decide on its own extension")
    return await run_update(temporal, Journey.deal, deal_id, DealWorkflow.decide_extension,
                         ExtensionDecision(decision=body.decision, reason=body.reason, by=principal.actor))


# ------------------------------------------------------------------ one-click links (the token is the credential)


def _page(name: str, status: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(pages.get_template(f"deal/{name}.html.j2").render(**context), status_code=status)


async def _claims(token: str, settings: Settings, session: AsyncSession):
    try:
        claims = read_token(settings.link_secret, token)
    except LinkError as err:
        status = 410 if "expired" in str(err) else 403
        return None, _page("link_error", status, message=str(err))
    if await session.get(UsedLink, claims.jti) is not None:
        return None, _page("link_error", 410, message="this link was already used")
    return claims, None


@router.get("/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_confirm(token: str, session: AsyncSession = Depends(get_session),
                       settings: Settings = Depends(get_settings_dep)):
    """Opening a link changes nothing: it shows what confirming would do."""
    claims, error = await _claims(token, settings, session)
    if error:
        return error
    deal = await session.get(Deal, uuid.UUID(claims.deal_id))
    if deal is None:
        return _page("link_error", 404, message="this deal does not exist")
    partner = await session.get(Partner, deal.partner_id)
    return _page("link_confirm", deal=deal, partner=partner, decision=claims.decision, token=token)


@router.post("/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_apply(token: str, reason: str = Form("", max_length=1000),
                     session: AsyncSession = Depends(get_session), temporal: Client = Depends(get_temporal),
                     settings: Settings = Depends(get_settings_dep)):
    """Confirming applies the decision exactly once: the link's id is recorded in the same
    transaction, and a concurrent second use waits for it and is refused."""
    claims, error = await _claims(token, settings, session)
    if error:
        return error
    deal_id = uuid.UUID(claims.deal_id)
    session.add(UsedLink(jti=claims.jti, deal_id=deal_id, used_by=claims.approver))
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return _page("link_error", 410, message="this link was already used")
    decision = DealDecision(decision=Decision(claims.decision), by=claims.approver,
                            reason=reason.strip() or f"{claims.decision} by one-click link")
    try:
        result = await run_update(temporal, Journey.deal, deal_id, DealWorkflow.decide, decision)
    except HTTPException as err:
        await session.rollback()
        return _page("link_error", err.status_code, message=err.detail)
    await session.commit()
    return _page("link_done", result=result, decision=claims.decision)
