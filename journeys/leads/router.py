"""The lead distribution journey's API: intake, the read model (scoped: a partner sees only the
leads offered to it), answers to offers (and the one-click links from email), hand-back, recall
by ops, the deal that converts a lead, and the partners' lead preferences."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.dialects.postgresql import insert

from api import journeys, links
from api.auth import ensure_partner_access
from api.deps import OpsDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep, UpdateBudget, load_partner
from api.openapi import QUERY, UPDATE
from api.routemeta import route_meta
from domain.enums import Role
from domain.errors import Refused
from domain.journeys import PROGRESS
from journeys.leads import service
from journeys.leads.domain import (
    JOURNEY,
    RECALL,
    LeadProgress,
    LeadState,
    RecallRequest,
    Response,
    ResponseResult,
)
from journeys.leads.models import Lead, LeadPreference
from journeys.leads.policy import LeadsPolicy
from journeys.leads.schemas import (
    DealLinkBody,
    DeclineBody,
    DryRunBody,
    DryRunOut,
    HandBackBody,
    ImportOut,
    LeadCreate,
    LeadDetail,
    LeadOut,
    PreferencesBody,
    RecallBody,
    SourceAttribution,
)
from store import repo

router = APIRouter(prefix="/leads", tags=["leads"])
OFFER_409 = "the partner has no open offer of this lead"


@router.post(
    "",
    status_code=201,
    response_model=LeadDetail,
    responses={409: {"description": "an open lead exists"}},
    openapi_extra=route_meta(
        {
            409: "an open lead for this customer and category, or this external_id, exists",
            503: "the lead journey could not be started; nothing was written",
        },
        business_rule="the category must be one of the policy's (when it lists them); value and currency go together",
        cross_field=True,
    ),
)
async def create_lead(
    body: LeadCreate, principal: OpsDep, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    """A lead from ops or an integration (an ops key): routed by the policy's rules at once."""
    return await service.create(session, temporal, principal, body, settings.task_queue)


@router.post(
    "/import",
    response_model=ImportOut,
    openapi_extra=route_meta(
        {
            422: "the rows' errors (nothing was imported), or not UTF-8 CSV with external_id",
            503: "a lead journey could not be started; the rows before it were imported",
        },
        business_rule="the CSV's header names external_id and the fields of `POST /leads`; every row must be valid",
        openapi={"requestBody": {"content": {"text/csv": {"schema": {"type": "string", "maxLength": 2_000_000}}}}},
    ),
    responses={413: {"description": "too large"}, 422: {"description": "the rows' errors; nothing was imported"}},
)
async def import_leads(
    request: Request, principal: OpsDep, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    """Many leads from a CSV (header: the fields of `POST /leads`, `external_id` required): every
    row is validated first (errors per row, nothing written on any error; a cell starting like a
    formula is refused); a row whose external_id was imported before is skipped."""
    raw = await request.body()
    return await service.import_leads(session, temporal, principal, raw, settings.task_queue)


@router.post(
    "/routing/dry-run",
    response_model=DryRunOut,
    openapi_extra=route_meta(
        business_rule="the draft rules' names are distinct (a model validator of the policy section)", cross_field=True
    ),
)
async def routing_dry_run(body: DryRunBody, principal: OpsDep, session: SessionDep):
    """Which partner each of the last N leads would go to under a draft rule set, beside the
    current rules, and each partner's share before and after. Writes nothing."""
    return await service.dry_run(session, body.rules, body.last)


@router.get("/attribution", response_model=list[SourceAttribution])
async def attribution(principal: PrincipalDep, session: SessionDep):
    """Per lead source (campaign), of the leads the caller may see: leads, accepted, converted (a
    deal credited to the lead), won (that deal closed won) and the won revenue per currency."""
    return await service.attribution(session, principal)


@router.get("", response_model=list[LeadOut])
async def list_leads(
    principal: PrincipalDep,
    session: SessionDep,
    state: LeadState | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
):
    """Leads the caller may see: ops all; a CAM those offered to its portfolio; a partner its own."""
    return await service.list_leads(session, principal, state=state, limit=limit, offset=offset)


@router.get("/{lead_id:uuid}", response_model=LeadDetail | LeadOut)
async def get_lead(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    """A lead; ops and CAMs see its routing path (every pick with its rule, candidates and scores)."""
    lead = await service.lead_for(session, lead_id, principal)
    if principal.role == Role.partner:
        return LeadOut.model_validate(lead)
    return LeadDetail.model_validate(lead)


@router.get("/{lead_id:uuid}/progress", response_model=LeadProgress, openapi_extra=route_meta(QUERY))
async def lead_progress(lead_id: uuid.UUID, principal: OpsDep, session: SessionDep, temporal: TemporalDep):
    """Live state of the journey (workflow query), for ops."""
    await service.lead_for(session, lead_id, principal)
    return await journeys.query(temporal, JOURNEY, lead_id, PROGRESS, LeadProgress)


async def _respond(session, temporal, settings, principal, lead_id: uuid.UUID, **answer) -> ResponseResult:
    return await service.respond(
        session, temporal, principal, lead_id, deadline=settings.update_deadline_seconds, **answer
    )


@router.post(
    "/{lead_id:uuid}/accept",
    response_model=ResponseResult,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta({409: OFFER_409, **UPDATE}),
)
async def accept(
    lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    """The partner accepts its offer; in a pool, the first acceptance wins and the others are withdrawn."""
    return await _respond(session, temporal, settings, principal, lead_id, response=Response.accept)


@router.post(
    "/{lead_id:uuid}/decline",
    response_model=ResponseResult,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta(
        {409: OFFER_409, **UPDATE}, business_rule="the reason code must be one of the policy's `leads.decline_reasons`"
    ),
)
async def decline(
    lead_id: uuid.UUID,
    body: DeclineBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """The partner declines its offer with a reason (one of the policy's); the lead goes on."""
    return await _respond(
        session,
        temporal,
        settings,
        principal,
        lead_id,
        response=Response.decline,
        reason_code=body.reason_code,
        reason=body.reason,
    )


@router.post(
    "/{lead_id:uuid}/hand-back",
    response_model=ResponseResult,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta({409: "the lead is not accepted by this partner", **UPDATE}),
)
async def hand_back(
    lead_id: uuid.UUID,
    body: HandBackBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """The partner hands an accepted lead back with a reason; routing continues without it."""
    return await _respond(
        session, temporal, settings, principal, lead_id, response=Response.hand_back, reason=body.reason
    )


@router.post(
    "/{lead_id:uuid}/recall",
    response_model=ResponseResult,
    openapi_extra=route_meta({409: "the lead has ended, a recall is running, or recalls are used up", **UPDATE}),
)
async def recall(
    lead_id: uuid.UUID,
    body: RecallBody,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Ops recall the lead (audited): withdraw its offers or acceptance; offer it to the partner named,
    or route it again."""
    await service.lead_for(session, lead_id, principal)
    if body.to_partner_id is not None:
        await load_partner(session, body.to_partner_id, principal)
    req = RecallRequest(
        by=principal.actor, reason=body.reason, to_partner_id=str(body.to_partner_id) if body.to_partner_id else None
    )
    return await service.update(
        session, temporal, lead_id, RECALL, req, ResponseResult, deadline=settings.update_deadline_seconds
    )


@router.post(
    "/{lead_id:uuid}/deal",
    status_code=202,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta(
        {409: "the lead is not accepted by this partner, or its journey has ended"},
        business_rule="the deal must be one the partner registered",
    ),
)
async def link_deal(
    lead_id: uuid.UUID, body: DealLinkBody, principal: PrincipalDep, session: SessionDep, temporal: TemporalDep
):
    """The partner that accepted the lead names the deal it registered for it: the lead is converted."""
    lead = await service.lead_for(session, lead_id, principal)
    return await service.link_deal(session, temporal, principal, lead, body.deal_id)


@router.put(
    "/preferences/{partner_id}",
    response_model=PreferencesBody,
    openapi_extra=route_meta(business_rule="the time zone must be one the IANA database knows", cross_field=True),
)
async def put_preferences(partner_id: uuid.UUID, body: PreferencesBody, principal: PrincipalDep, session: SessionDep):
    """A partner's lead preferences (the partner itself or ops): accepting leads, territories,
    categories, capacity of open offers, time zone of its business hours."""
    partner = await load_partner(session, partner_id, principal)
    ensure_partner_access(principal, partner)
    if principal.role == Role.cam:
        raise Refused("a partner's lead preferences are set by the partner or ops")
    values = body.model_dump()
    await session.execute(
        insert(LeadPreference)
        .values(partner_id=partner.id, **values)
        .on_conflict_do_update(index_elements=["partner_id"], set_=values)
    )
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="leads.preferences_changed",
        partner_id=partner.id,
        journey=JOURNEY,
        detail=body.model_dump(mode="json"),
    )
    await session.commit()
    return body


# ------------------------------------------------------------------ one-click links (the token is the credential)


@router.get("/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_confirm(token: links.Token, request: Request, session: SessionDep, settings: SettingsDep):
    """Opening a link changes nothing: it shows what confirming would do."""
    try:
        claims = await service.link_claims(session, settings.link_secret, token)
    except links.LinkRefused as err:
        return await links.error_page(request, "leads", err)
    lead = await session.get(Lead, uuid.UUID(claims.lead_id))
    if lead is None:
        return links.page("leads", "link_error", 404, message="this lead does not exist")
    reasons = (await repo.current_policy(session)).policy.section(LeadsPolicy).decline_reasons
    return links.page("leads", "link_confirm", lead=lead, decision=claims.decision, reasons=reasons)


@router.post("/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_apply(
    token: links.Token,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    reason: links.LinkReason = "",
    reason_code: Annotated[str, Form(max_length=40, pattern=r"^[a-z_]{1,40}$")] = "other",
):
    """Confirming answers the offer exactly once."""
    return await links.applied(
        request,
        "leads",
        service.apply_link(
            session,
            temporal,
            settings.link_secret,
            token,
            reason_code,
            reason,
            deadline=settings.update_deadline_seconds,
        ),
    )
