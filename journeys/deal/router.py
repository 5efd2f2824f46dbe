"""The deal registration journey's API: register (with the conflict check), decide, stage
changes, extensions, the read model, and the one-click decision links from email."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from api import journeys, links, pagination
from api.deps import CreationDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep, UpdateBudget
from api.openapi import IDEMPOTENCY_409, QUERY, START_503, UPDATE
from api.routemeta import route_meta
from domain.journeys import PROGRESS
from journeys.deal import service
from journeys.deal.domain import (
    DECIDE,
    DECIDE_EXTENSION,
    JOURNEY,
    REQUEST_EXTENSION,
    DealDecision,
    DealProgress,
    DealState,
    DecisionResult,
    ExtensionDecision,
    ExtensionRequest,
    ExtensionResult,
    StageChange,
)
from journeys.deal.models import Deal
from journeys.deal.schemas import DealCreate, DealOut, DecisionBody, ExtensionBody, ExtensionDecisionBody, StageBody
from store.models import Partner

router = APIRouter(prefix="/deals", tags=["deals"])


@router.post(
    "",
    status_code=201,
    response_model=DealOut,
    responses={
        409: {"description": "the same partner already registered this deal"},
        403: {"description": "a lapsed certification restricts the category"},
    },
    openapi_extra=route_meta(
        {
            404: "no partner with this partner_id",
            409: f"this partner already registered this deal, or {IDEMPOTENCY_409}",
            503: START_503,
        },
        business_rule="a cam or ops key must name the partner (a partner key names itself)",
    ),
)
async def register_deal(body: DealCreate, ctx: CreationDep):
    """Register a deal (the partner itself, its CAM or ops) and start `deal-{deal_id}`."""
    partner_id = body.partner_id or ctx.principal.partner_id
    if partner_id is None:
        raise HTTPException(422, detail="partner_id: required for cam and ops keys")
    return await journeys.created(ctx, body, JOURNEY, lambda idem: service.register(ctx, body, partner_id, idem))


@router.get("", response_model=list[DealOut], openapi_extra=route_meta({404: "`after` names no deal"}))
async def list_deals(
    principal: PrincipalDep,
    session: SessionDep,
    partner_id: uuid.UUID | None = None,
    cam_id: uuid.UUID | None = None,
    state: DealState | None = None,
    expiring_within_days: float | None = Query(None, gt=0, le=3650),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    after: uuid.UUID | None = pagination.AFTER,
):
    """Deals, filtered by partner, CAM, state and protection expiring within N days.
    A CAM sees only its portfolio; a partner only itself."""
    return await service.list_deals(
        session,
        principal,
        partner_id=partner_id,
        cam_id=cam_id,
        state=state,
        expiring_within_days=expiring_within_days,
        limit=limit,
        offset=offset,
        after=after,
    )


@router.get("/{deal_id}", response_model=DealOut)
async def get_deal(deal_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    deal, _ = await service.deal_for(session, deal_id, principal)
    return deal


@router.get("/{deal_id}/progress", response_model=DealProgress, openapi_extra=route_meta(QUERY))
async def deal_progress(deal_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, temporal: TemporalDep):
    """Live state of the journey (workflow query)."""
    await service.deal_for(session, deal_id, principal)
    return await journeys.query(temporal, JOURNEY, deal_id, PROGRESS, DealProgress)


@router.post(
    "/{deal_id}/decision",
    response_model=DecisionResult,
    openapi_extra=route_meta({409: "the deal is no longer pending", **UPDATE}),
)
async def decide(
    deal_id: uuid.UUID,
    body: DecisionBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Approve or reject a pending deal: the partner's CAM, or ops."""
    return await service.update(
        session,
        temporal,
        principal,
        deal_id,
        DECIDE,
        DealDecision(decision=body.decision, reason=body.reason, by=principal.actor),
        DecisionResult,
        deadline=settings.update_deadline_seconds,
        decision_on="deal",
    )


@router.post(
    "/{deal_id}/stage",
    status_code=202,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta(
        {
            409: "only an approved deal changes stage, as often as the policy's `limits.max_stage_changes`",
            **QUERY,
        }
    ),
)
async def change_stage(
    deal_id: uuid.UUID, body: StageBody, principal: PrincipalDep, session: SessionDep, temporal: TemporalDep
):
    """Move an approved deal to another stage (the partner, its CAM or ops); closed_won /
    closed_lost end the journey."""
    deal, _ = await service.deal_for(session, deal_id, principal)
    await service.change_stage(temporal, deal, StageChange(stage=body.stage, by=principal.actor))
    return {"deal_id": str(deal_id), "stage": body.stage.value, "accepted": True}


@router.post(
    "/{deal_id}/extensions",
    response_model=ExtensionResult,
    openapi_extra=route_meta(
        {
            409: "the deal is not approved, a request is already waiting, or the policy's extensions are used up",
            **UPDATE,
        }
    ),
)
async def request_extension(
    deal_id: uuid.UUID,
    body: ExtensionBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Ask for more protection time (bounded count and length; CAM tiers need the CAM)."""
    return await service.update(
        session,
        temporal,
        principal,
        deal_id,
        REQUEST_EXTENSION,
        ExtensionRequest(days=body.days, reason=body.reason, by=principal.actor),
        ExtensionResult,
        deadline=settings.update_deadline_seconds,
    )


@router.post(
    "/{deal_id}/extensions/decision",
    response_model=ExtensionResult,
    openapi_extra=route_meta({409: "no extension is pending", **UPDATE}),
)
async def decide_extension(
    deal_id: uuid.UUID,
    body: ExtensionDecisionBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    return await service.update(
        session,
        temporal,
        principal,
        deal_id,
        DECIDE_EXTENSION,
        ExtensionDecision(decision=body.decision, reason=body.reason, by=principal.actor),
        ExtensionResult,
        deadline=settings.update_deadline_seconds,
        decision_on="extension",
    )


# ------------------------------------------------------------------ one-click links (the token is the credential)


@router.get("/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_confirm(token: links.Token, request: Request, session: SessionDep, settings: SettingsDep):
    """Opening a link changes nothing: it shows what confirming would do."""
    try:
        claims = await service.link_claims(session, settings.link_secret, token)
    except links.LinkRefused as err:
        return await links.error_page(request, "deal", err)
    deal = await session.get(Deal, uuid.UUID(claims.deal_id))
    if deal is None:
        return links.page("deal", "link_error", 404, message="this deal does not exist")
    partner = await session.get(Partner, deal.partner_id)
    return links.page("deal", "link_confirm", deal=deal, partner=partner, decision=claims.decision, token=token)


@router.post("/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_apply(
    token: links.Token,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    reason: links.LinkReason = "",
):
    """Confirming applies the decision exactly once."""
    return await links.applied(
        request,
        "deal",
        service.apply_link(
            session, temporal, settings.link_secret, token, reason, deadline=settings.update_deadline_seconds
        ),
    )
