"""The MDF journey in the partner portal: claims due (an activity ended or running, its claim
window closing `claim_window_days` after its planned end) and claims returned for more proof on the
home page; the funds available, the catalog and requesting funds (the API's service)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Form, Request
from pydantic import ValidationError
from sqlalchemy import select

from api import journeys
from api.deps import Creation, SessionDep, SettingsDep, TemporalDep
from api.portal.items import PortalActionDep, PortalContext, PortalItem, portal_action, portal_item, portal_view
from api.portal.pages import error_text, render
from api.portal.security import PREFIX, signed_in
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from journeys.mdf import service
from journeys.mdf.domain import JOURNEY, MdfState
from journeys.mdf.models import MdfRequest
from journeys.mdf.schemas import MdfCreate
from store import repo
from store.models import Partner

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
        minor = int((Decimal(amount.strip() or "0") * 100).to_integral_value())
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
    except (ValidationError, InvalidOperation) as err:
        return (error_text(err) if isinstance(err, ValidationError) else ctx.t.gettext("amount: not a number")), "error"
    partner = await ctx.partner()
    creation = Creation(ctx.principal, ctx.session, ctx.temporal, ctx.settings, None, "/mdf/requests")
    await journeys.created(creation, body, JOURNEY, lambda idem: service.create_request(creation, body, partner, idem))
    return ctx.t.gettext("Funds requested: %(amount)s reserved.", amount=ctx.t.money(minor, body.currency))
