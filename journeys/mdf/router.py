"""The MDF journey's API: funds and their ledger, requests, decisions by level, the partner's
changes, claims with proof (multipart), proof downloads, payments, clawbacks, reports, and the
one-click decision links from email."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from api import journeys, links, pagination
from api.deps import (
    CreationDep,
    OpsDep,
    PartnerDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
    UpdateBudget,
    load_partner,
)
from api.idempotency import Idempotency
from api.openapi import DEFAULT_DESCRIPTIONS, IDEMPOTENCY_409, START_503, UPDATE
from api.routemeta import route_meta
from journeys.mdf import one_click as mdf_links
from journeys.mdf import reports, service
from journeys.mdf import uploads as proof_files
from journeys.mdf.domain import (
    ADD_PROOF,
    CHANGE_DATES,
    DECIDE,
    DECIDE_CLAIM,
    JOURNEY,
    RECORD_PAYMENT,
    RESUBMIT,
    START_ACTIVITY,
    SUBMIT_CLAIM,
    ClaimSubmission,
    DateChange,
    EntryKind,
    MdfAnswer,
    MdfState,
    Payment,
    ProofAdded,
    Resubmission,
    StartActivity,
    defuse_csv,
)
from journeys.mdf.models import MdfProof, MdfRequest
from journeys.mdf.policy import ProofKind
from journeys.mdf.schemas import (
    PERIOD,
    AdjustmentBody,
    AllocationBody,
    ClawbackBody,
    ClawbackOut,
    DatesBody,
    DecisionBody,
    FundsOut,
    MdfCreate,
    MdfDetailOut,
    MdfOut,
    PaymentBody,
    ProofOut,
    ResubmissionBody,
    RoiRow,
    UtilizationRow,
)
from store import repo
from store.models import Partner

router = APIRouter(tags=["mdf"])
# at most the policy's largest `max_files` of each kind (which the claim checks against the policy in force)
Files = Annotated[list[UploadFile], File(max_length=100, description="PDF, PNG, JPEG or CSV, checked by content")]


# ------------------------------------------------------------------ funds


@router.get("/partners/{partner_id}/funds", response_model=FundsOut, openapi_extra=route_meta({}))
async def get_funds(partner: PartnerDep, session: SessionDep, temporal: TemporalDep, settings: SettingsDep):
    """Balances by period (every one a sum of the ledger entries listed with it); the current
    period's fund opens on first sight with the tier's allocation."""
    return await service.funds(session, temporal, partner, settings.task_queue)


@router.post(
    "/partners/{partner_id}/funds/allocations",
    status_code=201,
    openapi_extra=route_meta(
        {409: f"the period's fund expired, or {IDEMPOTENCY_409}"},
        business_rule="the period must be of the policy's kind (e.g. a quarter), at most a year ahead",
    ),
)
async def allocate(partner_id: uuid.UUID, body: AllocationBody, principal: OpsDep, ctx: CreationDep):
    """Ops allocate more funds to a partner for a period (beyond the tier's allocation)."""
    partner = await load_partner(ctx.session, partner_id, principal)
    idem = Idempotency(ctx.session, principal, ctx.idempotency_key, ctx.path, body)
    return await idem.run(
        lambda: service.add_fund_entry(
            ctx, partner, EntryKind.allocation, body.amount_minor, body.reason, body.period, idem
        )
    )


@router.post(
    "/partners/{partner_id}/funds/adjustments",
    status_code=201,
    openapi_extra=route_meta(
        {409: f"the adjustment would take the fund below what is available, the fund expired, or {IDEMPOTENCY_409}"},
        business_rule="the period must be the policy's, at most a year ahead",
    ),
)
async def adjust(partner_id: uuid.UUID, body: AdjustmentBody, principal: OpsDep, ctx: CreationDep):
    """Ops adjust a fund up or down, with a reason (never below what is available)."""
    partner = await load_partner(ctx.session, partner_id, principal)
    idem = Idempotency(ctx.session, principal, ctx.idempotency_key, ctx.path, body)
    return await idem.run(
        lambda: service.add_fund_entry(
            ctx, partner, EntryKind.adjustment, body.amount_minor, body.reason, body.period, idem
        )
    )


# ------------------------------------------------------------------ requests


@router.post(
    "/mdf/requests",
    status_code=201,
    response_model=MdfOut,
    openapi_extra=route_meta(
        {
            404: "no partner with this partner_id",
            409: f"the fund cannot cover the amount (the detail names what is available), or {IDEMPOTENCY_409}",
            503: START_503,
        },
        business_rule=(
            "the activity type must be in the policy's catalog, the dates in order and within its "
            "length, an exchange rate known for another currency; a cam or ops key must name the partner"
        ),
    ),
)
async def create_request(body: MdfCreate, ctx: CreationDep):
    """Request funds (the partner, its CAM or ops): reserved at once, or 409 naming what is available."""
    partner_id = body.partner_id or ctx.principal.partner_id
    if partner_id is None:
        raise HTTPException(422, detail="partner_id: required for cam and ops keys")
    partner = await load_partner(ctx.session, partner_id, ctx.principal)
    return await journeys.created(ctx, body, JOURNEY, lambda idem: service.create_request(ctx, body, partner, idem))


@router.get("/mdf/requests", response_model=list[MdfOut])
async def list_requests(
    principal: PrincipalDep,
    session: SessionDep,
    partner_id: uuid.UUID | None = None,
    cam_id: uuid.UUID | None = None,
    state: MdfState | None = None,
    period: str | None = Query(None, pattern=PERIOD),
    awaiting_me: bool = Query(False, description="only those waiting for a decision this key may take"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
):
    return await service.list_requests(
        session,
        principal,
        partner_id=partner_id,
        cam_id=cam_id,
        state=state,
        period=period,
        awaiting_me=awaiting_me,
        limit=limit,
        offset=offset,
    )


@router.get("/mdf/requests/{request_id}", response_model=MdfDetailOut, openapi_extra=route_meta({}))
async def get_request(request_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, temporal: TemporalDep):
    """The request with the journey's live progress (levels, deadlines, decisions, payments)."""
    req, _ = await service.request_for(session, request_id, principal)
    return await service.detail(session, temporal, req)


async def _update(
    session, temporal, principal, settings, request_id, name, arg, *, decision: bool = False
) -> MdfAnswer:
    """A workflow update on the request, answered within the settings' deadline (see `service.update`)."""
    return await service.update(
        session,
        temporal,
        principal,
        request_id,
        name,
        arg,
        MdfAnswer,
        deadline=settings.update_deadline_seconds,
        decision=decision,
    )


@router.post(
    "/mdf/requests/{request_id}/decision",
    response_model=MdfAnswer,
    openapi_extra=route_meta(
        {409: "no decision is awaited", **UPDATE},
        business_rule="a rejection or return needs a reason; a lower amount must be lower",
    ),
)
async def decide(
    request_id: uuid.UUID,
    body: DecisionBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """A decision at the level now deciding: approve, approve_lower (with amount_minor), reject or
    return (with a reason)."""
    arg = service.decision_of(principal, body.decision, body.amount_minor, body.reason)
    return await _update(session, temporal, principal, settings, request_id, DECIDE, arg, decision=True)


@router.post(
    "/mdf/requests/{request_id}/resubmission",
    response_model=MdfAnswer,
    openapi_extra=route_meta(
        {
            409: "the request is not returned, or the fund cannot cover the new amount",
            **UPDATE,
        },
        business_rule="the dates in order and within the policy's length",
    ),
)
async def resubmit(
    request_id: uuid.UUID,
    body: ResubmissionBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """A returned request, changed; the reservation follows the new amount (409 if the fund cannot)."""
    arg = Resubmission(
        title=body.title,
        planned_start=body.planned_start,
        planned_end=body.planned_end,
        amount_minor=body.amount_minor,
        expected_outcomes=body.expected_outcomes,
        by=principal.actor,
    )
    return await _update(session, temporal, principal, settings, request_id, RESUBMIT, arg)


@router.post(
    "/mdf/requests/{request_id}/dates",
    response_model=MdfAnswer,
    dependencies=[UpdateBudget],
    openapi_extra=route_meta(
        {409: "the request is not approved, or it started", **UPDATE},
        business_rule="the dates in order, within the policy's length and validity",
    ),
)
async def change_dates(
    request_id: uuid.UUID,
    body: DatesBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Move an approved activity's dates (within the pre-approval validity and the policy's length)."""
    arg = DateChange(planned_start=body.planned_start, planned_end=body.planned_end, by=principal.actor)
    return await _update(session, temporal, principal, settings, request_id, CHANGE_DATES, arg)


@router.post(
    "/mdf/requests/{request_id}/start",
    response_model=MdfAnswer,
    openapi_extra=route_meta({409: "the request is not approved", **UPDATE}),
)
async def start_activity(
    request_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    """The partner's activity started (before the pre-approval validity ends)."""
    arg = StartActivity(by=principal.actor)
    return await _update(session, temporal, principal, settings, request_id, START_ACTIVITY, arg)


# ------------------------------------------------------------------ claims and proof


def _files(invoice: list[UploadFile], photo: list[UploadFile], attendee_list: list[UploadFile]):
    return (
        [(ProofKind.invoice, f) for f in invoice]
        + [(ProofKind.photo, f) for f in photo]
        + [(ProofKind.attendee_list, f) for f in attendee_list]
    )


@router.post(
    "/mdf/requests/{request_id}/claim",
    response_model=MdfAnswer,
    openapi_extra=route_meta(
        {
            409: f"the request cannot be claimed now, or {IDEMPOTENCY_409}",
            413: "a file, or all of them, over the policy's limits",
            415: "a file whose content is not a type its kind allows",
            429: f"{DEFAULT_DESCRIPTIONS[429]}; or too many uploads at once with this key",
            **UPDATE,
        },
        business_rule=(
            "the proof the activity type needs; an amount within what was approved after the partner's share"
        ),
        upload=True,
    ),
)
async def claim(
    request_id: uuid.UUID,
    ctx: CreationDep,
    amount_minor: Annotated[int, Form(gt=0, le=10**13, description="what is claimed, in minor units")],
    total_cost_minor: Annotated[int, Form(gt=0, le=10**13, description="the activity's total cost")],
    invoice: Files = [],  # noqa: B006 (FastAPI copies defaults)
    photo: Files = [],  # noqa: B006
    attendee_list: Files = [],  # noqa: B006
):
    """Claim with proof of performance (multipart: fields `invoice`, `photo`, `attendee_list`).
    Checked before anything is stored: size (413), type by content (415), the proof the activity
    type needs (422). Safe to retry with an `Idempotency-Key`."""
    session, principal = ctx.session, ctx.principal
    req, _ = await service.request_for(session, request_id, principal)
    policy = (await repo.current_policy(session)).policy
    kind = policy.mdf.activity_type(req.activity_type)
    uploads = await proof_files.read_uploads(_files(invoice, photo, attendee_list), policy, kind.proof if kind else [])
    fields = {"amount_minor": amount_minor, "total_cost_minor": total_cost_minor}
    idem = Idempotency(session, principal, ctx.idempotency_key, ctx.path, proof_files.fingerprint(fields, uploads))
    arg = ClaimSubmission(
        amount_minor=amount_minor,
        total_cost_minor=total_cost_minor,
        proof_kinds=[u.kind for u in uploads],
        by=principal.actor,
    )

    async def submit() -> dict:
        answer = await proof_files.with_proofs(
            session, ctx.temporal, req, uploads, principal, SUBMIT_CLAIM, arg, settings=ctx.settings
        )
        out = answer.model_dump(mode="json")
        await idem.remember(200, out)
        await session.commit()
        return out

    return await idem.run(submit, status_code=200)


@router.post(
    "/mdf/requests/{request_id}/proofs",
    response_model=MdfAnswer,
    openapi_extra=route_meta(
        {
            409: "the claim is not returned for proof",
            413: "a file, or all of them, over the policy's limits",
            415: "a file whose content is not a type its kind allows",
            429: f"{DEFAULT_DESCRIPTIONS[429]}; or too many uploads at once with this key",
            **UPDATE,
        },
        business_rule="at least one file",
        upload=True,
    ),
)
async def add_proof(
    request_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    invoice: Files = [],  # noqa: B006
    photo: Files = [],  # noqa: B006
    attendee_list: Files = [],  # noqa: B006
):
    """More proof for a claim returned by its reviewer (the same checks as the claim's files)."""
    req, _ = await service.request_for(session, request_id, principal)
    policy = (await repo.current_policy(session)).policy
    uploads = await proof_files.read_uploads(_files(invoice, photo, attendee_list), policy, [])
    if not uploads:
        raise HTTPException(422, detail="files: send at least one file")
    arg = ProofAdded(proof_kinds=[u.kind for u in uploads], by=principal.actor)
    return await proof_files.with_proofs(session, temporal, req, uploads, principal, ADD_PROOF, arg, settings=settings)


@router.get("/mdf/requests/{request_id}/proofs", response_model=list[ProofOut])
async def list_proofs(request_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    from sqlalchemy import select

    req, _ = await service.request_for(session, request_id, principal)
    return (
        await session.scalars(select(MdfProof).where(MdfProof.request_id == req.id).order_by(MdfProof.created_at))
    ).all()


@router.get(
    "/mdf/requests/{request_id}/proofs/{proof_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file as uploaded"}},
)
async def download_proof(
    request_id: uuid.UUID, proof_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
):
    """A proof file, to the partner itself, its CAM or ops only, always as an attachment. A CSV file
    comes with its formula-leading cells defused (a leading apostrophe): `Digest` is then that of
    the file served, `X-Proof-Sha256` that of the file as uploaded."""
    req, _ = await service.request_for(session, request_id, principal)
    proof = await proof_files.proof_for(session, req, proof_id)
    data = await proof_files.proof_bytes(session, proof, settings)
    if proof.content_type == "text/csv":
        data = defuse_csv(data)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in proof.filename) or "file"
    return Response(
        data,
        media_type=proof.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Content-Type-Options": "nosniff",
            "Digest": f"sha-256={hashlib.sha256(data).hexdigest()}",
            "X-Proof-Sha256": proof.sha256,
        },
    )


@router.post(
    "/mdf/requests/{request_id}/claim/decision",
    response_model=MdfAnswer,
    openapi_extra=route_meta(
        {409: "no claim decision is awaited", **UPDATE},
        business_rule="a denial or return needs a reason; a lower amount must be lower",
    ),
)
async def decide_claim(
    request_id: uuid.UUID,
    body: DecisionBody,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """A claim decision at the level now reviewing: approve, approve_lower (in part), reject (deny) or
    return (for more proof)."""
    arg = service.decision_of(principal, body.decision, body.amount_minor, body.reason)
    return await _update(session, temporal, principal, settings, request_id, DECIDE_CLAIM, arg, decision=True)


@router.post(
    "/mdf/requests/{request_id}/payments",
    response_model=MdfAnswer,
    openapi_extra=route_meta(
        {
            409: "the claim is not approved, or the reference is recorded",
            **UPDATE,
        },
        business_rule="a payment is at most what remains to be paid",
    ),
)
async def record_payment(
    request_id: uuid.UUID,
    body: PaymentBody,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
):
    """Ops record a payment (several per claim allowed); paid in full, the journey ends."""
    arg = Payment(reference=body.reference, amount_minor=body.amount_minor, paid_on=body.paid_on, by=principal.actor)
    return await _update(session, temporal, principal, settings, request_id, RECORD_PAYMENT, arg)


@router.post(
    "/mdf/requests/{request_id}/clawbacks",
    status_code=201,
    response_model=ClawbackOut,
    openapi_extra=route_meta(
        {409: f"the request is not paid, or its audit period ended, or {IDEMPOTENCY_409}"},
        business_rule="a clawback is at most what was paid and not clawed back",
    ),
)
async def clawback(request_id: uuid.UUID, body: ClawbackBody, principal: OpsDep, ctx: CreationDep):
    """Ops recover paid funds within the policy's audit period, with a reason."""
    session = ctx.session
    req, _ = await service.request_for(session, request_id, principal)
    policy = (await repo.current_policy(session)).policy
    idem = Idempotency(session, principal, ctx.idempotency_key, ctx.path, body)

    async def create() -> dict:
        out = (await service.clawback(session, principal, req, body.amount_minor, body.reason, policy)).model_dump(
            mode="json"
        )
        await idem.remember(201, out)
        await session.commit()
        return out

    return await idem.run(create)


# ------------------------------------------------------------------ reports


CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV with ?format=csv"}
}


@router.get(
    "/mdf/reports/utilization",
    response_model=list[UtilizationRow],
    responses=CSV,
    openapi_extra=route_meta({404: "`after` names no fund of the caller's"}),
)
async def utilization(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    period: str | None = Query(None, pattern=PERIOD),
    partner_id: uuid.UUID | None = None,
    format: str = Query("json", pattern="^(json|csv)$"),
    limit: int = Query(reports.LIST_PAGE, ge=1, le=10_000),
    after: uuid.UUID | None = pagination.AFTER,
):
    """Per fund (partner and period): allocated, requested, approved, claimed, paid, expired,
    utilization %. JSON is paged (`limit`, `?after=<fund_id of the last row>`); `?format=csv`
    streams the whole report."""
    if format == "csv":
        if after is not None:  # refused (404) before the stream starts, not in the middle of it
            await reports.fund_position(session, principal, after)
        await session.close()  # the stream reads with its own sessions, a page at a time
        rows = reports.utilization_csv(
            request.app.state.sessionmaker, principal, period=period, partner_id=partner_id, after=after
        )
        return StreamingResponse(rows, media_type="text/csv")
    return await reports.utilization(session, principal, period=period, partner_id=partner_id, limit=limit, after=after)


@router.get("/mdf/reports/roi", response_model=list[RoiRow], responses=CSV)
async def roi(
    principal: PrincipalDep,
    session: SessionDep,
    period: str | None = Query(None, pattern=PERIOD),
    partner_id: uuid.UUID | None = None,
    format: str = Query("json", pattern="^(json|csv)$"),
):
    """Closed-won revenue of deals linked to MDF activities ÷ what was paid, per partner and period."""
    rows = await reports.roi(session, principal, period=period, partner_id=partner_id)
    if format == "csv":
        return PlainTextResponse(reports.as_csv(rows, RoiRow), media_type="text/csv")
    return rows


# ------------------------------------------------------------------ one-click links (the token is the credential)


@router.get("/mdf/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_confirm(token: links.Token, request: Request, session: SessionDep, settings: SettingsDep):
    """Opening a link changes nothing: it shows what confirming would do."""
    try:
        claims = await mdf_links.link_claims(session, settings.link_secret, token)
    except links.LinkRefused as err:
        return await links.error_page(request, "mdf", err)
    req = await session.get(MdfRequest, uuid.UUID(claims.request_id))
    if req is None:
        return links.page("mdf", "link_error", 404, message="this MDF request does not exist")
    partner = await session.get(Partner, req.partner_id)
    stage, _, decision = claims.decision.partition(":")
    return links.page("mdf", "link_confirm", req=req, partner=partner, stage=stage, decision=decision)


@router.post("/mdf/links/{token}", response_class=HTMLResponse, include_in_schema=False)
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
        "mdf",
        mdf_links.apply_link(
            session, temporal, settings.link_secret, token, reason, deadline=settings.update_deadline_seconds
        ),
    )
