"""The MDF journey in the partner portal: claims due (an activity ended or running, its claim
window closing `claim_window_days` after its planned end) and claims returned for more proof on the
home page; the funds available, the catalog and requesting funds (the API's service); a request's
page following its approvals and payments, and its claim with proof files (or more proof for a
returned claim): the files checked as the API checks them (size, type by content, the proof the
activity needs) before anything is stored, then the journey's update."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy import select

from api import journeys
from api.deps import Creation, SessionDep, SettingsDep, TemporalDep
from api.portal.i18n import N_
from api.portal.items import (
    PortalActionDep,
    PortalContext,
    PortalItem,
    own,
    portal_action,
    portal_item,
    portal_view,
)
from api.portal.pages import error_text, render, translator
from api.portal.security import PREFIX, signed_in
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from journeys.mdf import service
from journeys.mdf import uploads as proof_files
from journeys.mdf.domain import ADD_PROOF, JOURNEY, SUBMIT_CLAIM, ClaimSubmission, MdfState, ProofAdded
from journeys.mdf.models import MdfProof, MdfRequest
from journeys.mdf.policy import ProofKind
from journeys.mdf.schemas import MdfCreate
from journeys.mdf.web import minor_units
from store import repo
from store.models import Partner

STATES = {
    "pending_approval": N_("waiting for approval"),
    "returned": N_("returned to you for changes"),
    "approved": N_("approved"),
    "running": N_("running"),
    "claim_review": N_("claim under review"),
    "claim_returned": N_("claim returned: more proof needed"),
    "claim_approved": N_("claim approved"),
    "due_for_payment": N_("due for payment"),
    "paid": N_("paid"),
    "rejected": N_("rejected"),
    "claim_denied": N_("claim denied"),
    "expired": N_("expired"),
}
DECISIONS = {
    "approve": N_("approved"),
    "approve_lower": N_("approved for less"),
    "reject": N_("rejected"),
    "return": N_("returned to you"),
}
KINDS = {"invoice": N_("Invoice"), "photo": N_("Photo"), "attendee_list": N_("Attendee list")}
CLAIMABLE = (MdfState.approved.value, MdfState.running.value, MdfState.claim_returned.value)


@portal_item(JOURNEY)
async def claims_due(ctx: PortalContext) -> list[PortalItem]:
    stmt = (
        select(MdfRequest)
        .where(MdfRequest.partner_id == ctx.partner_id, MdfRequest.state.in_(CLAIMABLE))
        .order_by(MdfRequest.planned_end)
    )
    t = ctx.t
    items = []
    for req in (await ctx.session.scalars(stmt)).all():
        ends = datetime.combine(req.planned_end, time(0), UTC) + timedelta(days=1)
        deadline = ends + ctx.policy.days(ctx.policy.mdf.claim_window_days)
        returned = req.state == MdfState.claim_returned.value
        items.append(
            PortalItem(
                kind=JOURNEY,
                label=t.gettext("MDF claim returned") if returned else t.gettext("MDF claim due"),
                title=req.title,
                detail=t.gettext("approved: %(amount)s", amount=t.money(req.approved_minor or 0, req.currency)),
                deadline=deadline,
                deadline_label=t.gettext("claim by"),
                link=f"{PREFIX}/mdf/{req.id}",
                entity_id=str(req.id),
            )
        )
    return items


@portal_view(JOURNEY, "/mdf")
async def mdf_page(request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep):
    """The current fund with what is available, the catalog of activities, the partner's requests."""
    user = await signed_in(request, session)
    partner = await session.get(Partner, user.partner_id)
    assert partner is not None  # kept for the type checker: its users go with it
    policy = (await repo.current_policy(session)).policy
    funds = await service.funds(session, temporal, partner, settings.task_queue)
    stmt = select(MdfRequest).where(MdfRequest.partner_id == user.partner_id).order_by(MdfRequest.planned_start.desc())
    requests = (await session.scalars(stmt.limit(200))).all()
    return render(
        request,
        "mdf/mdf",
        user,
        fund=funds.funds[0] if funds.funds else None,
        catalog=policy.mdf.activity_types,
        requests=requests,
        states=STATES,
    )


Line = Annotated[str, Form(max_length=260), SCREEN_LINE]


@portal_action(JOURNEY, "request", "/mdf")
async def request_funds(
    ctx: PortalActionDep,
    activity_type: Line = "",
    title: Line = "",
    planned_start: Line = "",
    planned_end: Line = "",
    amount: Line = "",
    expected_outcomes: Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)] = "",
) -> str | tuple[str, str]:
    """Request funds from the catalog (POST /mdf/requests): reserved at once, or refused naming what
    is available."""
    ctx.back = f"{PREFIX}/mdf"
    policy = (await repo.current_policy(ctx.session)).policy
    try:
        minor = minor_units(amount) or 0
    except ValueError as err:
        return f"amount: {err}", "error"
    try:
        body = MdfCreate.model_validate(
            {
                "activity_type": activity_type,
                "title": title,
                "planned_start": planned_start,
                "planned_end": planned_end,
                "amount_minor": minor,
                "currency": policy.mdf.currency,
                "expected_outcomes": expected_outcomes,
            }
        )
    except ValidationError as err:
        return error_text(err), "error"
    partner = await ctx.partner()
    creation = Creation(ctx.principal, ctx.session, ctx.temporal, ctx.settings, None, "/mdf/requests")
    await journeys.created(creation, body, JOURNEY, lambda idem: service.create_request(creation, body, partner, idem))
    return ctx.t.gettext("Funds requested: %(amount)s reserved.", amount=ctx.t.money(minor, body.currency))


@portal_view(JOURNEY, "/mdf/{request_id}")
async def request_page(request_id: uuid.UUID, request: Request, session: SessionDep, temporal: TemporalDep):
    """A request: its amounts, the approvals decided so far, the payments, its proof files and, while
    it may be claimed, the claim form (or more proof for a returned claim)."""
    user = await signed_in(request, session)
    req = own(await session.get(MdfRequest, request_id), user, "MDF request")
    policy = (await repo.current_policy(session)).policy
    kind = policy.mdf.activity_type(req.activity_type)
    proofs = (await session.scalars(select(MdfProof).where(MdfProof.request_id == req.id))).all()
    detail = await service.detail(session, temporal, req)
    t = translator(user)
    return render(
        request,
        "mdf/request",
        user,
        req=detail,
        state=t.gettext(STATES.get(req.state, req.state)),
        progress=detail.progress,
        proofs=proofs,
        kinds=KINDS,
        decisions=DECISIONS,
        needed=[t.gettext(KINDS[k.value]) for k in kind.proof] if kind else [],
        claimable=req.state in (MdfState.approved.value, MdfState.running.value),
        returned=req.state == MdfState.claim_returned.value,
        limits=policy.mdf,
    )


Files = Annotated[list[UploadFile], File(max_length=100)]


def _chosen(invoice: list[UploadFile], photo: list[UploadFile], attendee_list: list[UploadFile]):
    """The files chosen, by kind (a file field left empty sends a part with no name and no bytes)."""
    return [
        (kind, f)
        for kind, files in (
            (ProofKind.invoice, invoice),
            (ProofKind.photo, photo),
            (ProofKind.attendee_list, attendee_list),
        )
        for f in files
        if f.filename or f.size
    ]


@portal_action(JOURNEY, "claim", "/mdf/{request_id}/claim", upload=True)
async def claim(
    request_id: uuid.UUID,
    ctx: PortalActionDep,
    amount: Line = "",
    total_cost: Line = "",
    invoice: Files = [],  # noqa: B006 (FastAPI copies defaults)
    photo: Files = [],  # noqa: B006
    attendee_list: Files = [],  # noqa: B006
) -> str | tuple[str, str]:
    """Claim with proof (POST /mdf/requests/{id}/claim): the files are checked (count, size, type by
    content, the proof the activity needs) before anything is stored; a refusal says which file and why."""
    t = ctx.t
    req = own(await ctx.session.get(MdfRequest, request_id), ctx.user, "MDF request")
    ctx.back = f"{PREFIX}/mdf/{request_id}"
    try:
        claimed, total = minor_units(amount), minor_units(total_cost)
    except ValueError as err:
        return f"amount: {err}", "error"
    if claimed is None or total is None:
        return t.gettext("Write the amount you claim and the activity's total cost."), "error"
    policy = (await repo.current_policy(ctx.session)).policy
    kind = policy.mdf.activity_type(req.activity_type)
    uploads = await proof_files.read_uploads(_chosen(invoice, photo, attendee_list), policy, kind.proof if kind else [])
    arg = ClaimSubmission(
        amount_minor=claimed, total_cost_minor=total, proof_kinds=[u.kind for u in uploads], by=ctx.principal.actor
    )
    await proof_files.with_proofs(
        ctx.session, ctx.temporal, req, uploads, ctx.principal, SUBMIT_CLAIM, arg, settings=ctx.settings
    )
    return t.gettext("Claim submitted: %(amount)s, under review.", amount=t.money(claimed, req.currency))


@portal_action(JOURNEY, "proof", "/mdf/{request_id}/proofs", upload=True)
async def add_proof(
    request_id: uuid.UUID,
    ctx: PortalActionDep,
    invoice: Files = [],  # noqa: B006
    photo: Files = [],  # noqa: B006
    attendee_list: Files = [],  # noqa: B006
) -> str | tuple[str, str]:
    """More proof for a returned claim (POST /mdf/requests/{id}/proofs): the same checks."""
    t = ctx.t
    req = own(await ctx.session.get(MdfRequest, request_id), ctx.user, "MDF request")
    ctx.back = f"{PREFIX}/mdf/{request_id}"
    policy = (await repo.current_policy(ctx.session)).policy
    uploads = await proof_files.read_uploads(_chosen(invoice, photo, attendee_list), policy, [])
    if not uploads:
        return t.gettext("Choose at least one file."), "error"
    arg = ProofAdded(proof_kinds=[u.kind for u in uploads], by=ctx.principal.actor)
    await proof_files.with_proofs(
        ctx.session, ctx.temporal, req, uploads, ctx.principal, ADD_PROOF, arg, settings=ctx.settings
    )
    return t.gettext("Proof added: the claim is reviewed again.")
