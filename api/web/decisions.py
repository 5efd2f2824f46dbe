"""The workspace's MDF and QBR decisions (the inline actions of their Today items and Partner
page sections): an MDF request or claim approved, approved for less, or rejected; a tier review
approved or overridden. Each goes through the same service functions and workflow updates as the
JSON API (`journeys/mdf/service.py`, `journeys/qbr/service.py`) with the signed-in user's `Principal`, so
the rules and the audit trail are one; a decision that lost a race says who decided first."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api import journeys
from api.deps import SessionDep, SettingsDep, TemporalDep, load_partner
from api.errors import status_of
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from api.web import security
from api.web.pages import WebRoute
from api.web.router import actor_names, back_to, redirect, signed_in, temporal_ui
from domain.enums import Tier
from domain.errors import DomainError
from domain.types import clean_text
from journeys.mdf import service as mdf_service
from journeys.mdf.domain import DECIDE, DECIDE_CLAIM, Decision, MdfAnswer, MdfState
from journeys.mdf.domain import JOURNEY as MDF
from journeys.mdf.models import MdfRequest
from journeys.mdf.schemas import MAX_MINOR
from journeys.qbr import service as qbr_service
from journeys.qbr.domain import DECIDE_TIER, PERIOD, ReviewOutcome, ReviewState
from journeys.qbr.domain import JOURNEY as QBR
from journeys.qbr.models import QbrTierReview
from journeys.qbr.schemas import TierDecisionBody

router = APIRouter(prefix=security.PREFIX, route_class=WebRoute, include_in_schema=False)

Back = Annotated[str, Form(max_length=500), SCREEN_LINE]
Reason = Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)]
Amount = Annotated[str, Form(max_length=20), SCREEN_LINE]
Period = Annotated[str, Path(pattern=PERIOD, description="a quarter, e.g. 2027-Q1")]


def minor_units(amount: str) -> int | None:
    """'1,234.50' -> 123450; empty -> None; ValueError when it is not a positive amount."""
    text = amount.strip().replace(",", "").replace(" ", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("write the amount like 400.00") from None
    # bounded before any arithmetic: quantizing 1e30 raised InvalidOperation (a 500)
    if not value.is_finite() or value <= 0 or value > Decimal(MAX_MINOR) / 100:
        raise ValueError(f"a positive amount of at most {MAX_MINOR // 100:,}.00")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("a positive amount with at most two decimals")
    return int(value * 100)


# ------------------------------------------------------------------ MDF


async def _mdf_already_decided(session: AsyncSession, request_id: uuid.UUID, message: str) -> str:
    """Who decided a request (or claim) that another decision beat, once the journey recorded it."""
    req = None
    for _ in range(30):  # the winner's decision is being recorded: up to ~3 s
        session.expire_all()
        req = await session.get(MdfRequest, request_id)
        if req is not None and req.decided_by and req.state not in (MdfState.pending_approval, MdfState.claim_review):
            break
        await asyncio.sleep(0.1)
    if req is None or not req.decided_by or req.state in (MdfState.pending_approval, MdfState.claim_review):
        return f"This MDF request was not decided here: {message}"
    who = (await actor_names(session, [req.decided_by]))[req.decided_by]
    return f"Already decided by {who} at {req.updated_at:%Y-%m-%d %H:%M:%S} UTC: the request is {req.state}."


async def _decide_mdf(
    request_id: uuid.UUID,
    request: Request,
    session: AsyncSession,
    temporal,
    deadline: float,
    *,
    update: str,
    decision: Decision,
    reason: str,
    amount: str,
    back: str,
) -> RedirectResponse:
    user = await signed_in(request, session, form=True)
    target = back_to(back)
    what = "claim" if update == DECIDE_CLAIM else "request"
    try:
        reason = clean_text(reason, multiline=True)
        amount_minor = minor_units(amount) if decision == Decision.approve_lower else None
    except ValueError as err:
        return redirect(target, f"{'reason' if 'amount' not in str(err) else 'amount'}: {err}", "error")
    if decision == Decision.reject and not reason:
        return redirect(target, f"reason: say why the {what} is {'denied' if update == DECIDE_CLAIM else 'rejected'} "
                                "(the partner reads it)", "error")  # fmt: skip
    if decision == Decision.approve_lower and amount_minor is None:
        return redirect(target, "amount: the lower amount to approve", "error")
    req, _ = await mdf_service.request_for(session, request_id, user.principal)
    title = req.title
    arg = mdf_service.decision_of(user.principal, decision, amount_minor, reason or "approved in the CAM workspace")
    try:
        answer = await mdf_service.update(
            session, temporal, user.principal, request_id, update, arg, MdfAnswer, deadline=deadline, decision=True
        )
    except (HTTPException, DomainError) as err:
        if status_of(err) == 409:
            return redirect(target, await _mdf_already_decided(session, request_id, str(err.detail)), "info")
        return redirect(target, f"{title}: {err.detail}", "info" if status_of(err) == 202 else "error")
    waiting = f", waiting for {answer.level}" if answer.level else ""
    return redirect(target, f"{title}: {answer.state.value}{waiting}.")


@router.post("/mdf/requests/{request_id}/decision")
async def decide_mdf_request(
    request_id: uuid.UUID, request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep,
    decision: Annotated[Decision, Form()], reason: Reason = "", amount: Amount = "", back: Back = "/web/",
):  # fmt: skip
    """Approve, approve for less or reject a request at the level now deciding (the `decide` update)."""
    return await _decide_mdf(
        request_id, request, session, temporal, settings.update_deadline_seconds,
        update=DECIDE, decision=decision, reason=reason, amount=amount, back=back,
    )  # fmt: skip


@router.post("/mdf/requests/{request_id}/claim-decision")
async def decide_mdf_claim(
    request_id: uuid.UUID, request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep,
    decision: Annotated[Decision, Form()], reason: Reason = "", amount: Amount = "", back: Back = "/web/",
):  # fmt: skip
    """Approve, approve in part or deny a claim (the `decide_claim` update)."""
    return await _decide_mdf(
        request_id, request, session, temporal, settings.update_deadline_seconds,
        update=DECIDE_CLAIM, decision=decision, reason=reason, amount=amount, back=back,
    )  # fmt: skip


@router.get("/mdf/requests/{request_id}/journey")
async def mdf_journey(request_id: uuid.UUID, request: Request, session: SessionDep, settings: SettingsDep):
    """The request's journey in the Temporal Web UI (for a user who may see the request)."""
    user = await signed_in(request, session)
    await mdf_service.request_for(session, request_id, user.principal)
    return RedirectResponse(temporal_ui(settings, f"{MDF}-{request_id}"), status_code=303)


# ------------------------------------------------------------------ QBR tier reviews


@router.post("/partners/{partner_id}/qbr/{period}/tier-decision")
async def decide_tier(
    partner_id: uuid.UUID, period: Period, request: Request, session: SessionDep, temporal: TemporalDep,
    settings: SettingsDep, decision: Annotated[str, Form(pattern="^(approve|override)$")],
    reason: Reason = "", to_tier: Annotated[str, Form(max_length=20), SCREEN_LINE] = "", back: Back = "/web/",
):  # fmt: skip
    """Approve the tier review's recommendation or override it (another tier, or hold) with a
    reason, through the QBR journey's `decide_tier` update."""
    user = await signed_in(request, session, form=True)
    target = back_to(back)
    partner = await load_partner(session, partner_id, user.principal)
    try:
        body = TierDecisionBody(
            approve=decision == "approve",
            to_tier=Tier(to_tier) if to_tier and decision == "override" else None,
            reason=clean_text(reason, multiline=True),
        )
    except ValueError as err:
        return redirect(target, f"tier decision: {err}", "error")
    name = partner.name
    try:
        arg = await qbr_service.decision(session, user.principal, partner, period, body)
        await session.close()
        outcome = await journeys.run_update(
            temporal, QBR, qbr_service.entity(partner_id, period), DECIDE_TIER, arg, ReviewOutcome,
            deadline=settings.update_deadline_seconds, progress=f"/partners/{partner_id}/tier-reviews",
        )  # fmt: skip
    except (HTTPException, DomainError) as err:
        review = await session.get(QbrTierReview, (partner_id, period)) if status_of(err) == 409 else None
        if review is not None and review.state != ReviewState.pending:
            who = (await actor_names(session, [review.decided_by]))[review.decided_by] if review.decided_by else "?"
            return redirect(target, f"Already decided by {who}: the {period} tier review is {review.state}.", "info")
        return redirect(target, f"{name}: {err.detail}", "info" if status_of(err) == 202 else "error")
    return redirect(target, f"{name}: tier review {outcome.state.value}.")
