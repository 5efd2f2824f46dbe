"""The CAM workspace's shell: its pages, Today, Portfolio (and its CSV), Partner, Ops (policy,
journeys, stuck journeys, CAM workload, operators). It owns no journey: Today's items, the
Portfolio's columns, the Partner page's sections and their inline actions come from each
journey's `journeys/<name>/web.py` (api/web/items.py, api/web/actions.py). Every form carries the
session's CSRF token; every action answers with a redirect (post/redirect/get) and a notice."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api import handover, offboarding
from api.deps import SessionDep, SettingsDep, TemporalDep, load_partner
from api.routers import ops as ops_api
from api.routers import policy as policy_api
from api.schemas import SCREEN_LINE, SCREEN_TEXT
from api.web import policy_form, portfolio, security, today
from api.web.actors import actor_names
from api.web.items import SECTIONS, TodayContext
from api.web.pages import WebRoute, redirect, render, temporal_ui
from api.web.security import WebUser, require_ops, signed_in
from core import registry
from domain.enums import PartnerStatus, Tier
from domain.errors import DomainError
from domain.policy import ProgramPolicy
from domain.types import clean_text, normalize_email
from store import repo
from store.models import AuditEvent, Cam, JourneyRecord, OutboxMessage
from store.models.web import WebOperator

router = APIRouter(prefix=security.PREFIX, route_class=WebRoute, include_in_schema=False)


# ------------------------------------------------------------------ Today


@router.get("/")
async def today_page(
    request: Request,
    session: SessionDep,
    kind: Annotated[str, Query(max_length=40, pattern=r"^[a-z0-9_-]*$")] = "",
):
    """The most urgent items first (`today.SHOWN` of them), every kind counted; `?kind=` shows one
    kind only (an unknown kind shows none)."""
    user = await signed_in(request, session)
    listing = await today.collect(session, user.principal, kind=kind)
    return render(request, "today", user, today=listing, now=listing.now)


# ------------------------------------------------------------------ Portfolio


async def portfolio_of(
    request: Request,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200), SCREEN_LINE] = "",
    tier: Annotated[str, Query(max_length=20), SCREEN_LINE] = "",
    status: Annotated[str, Query(max_length=20), SCREEN_LINE] = "",
    sort: Annotated[str, Query(max_length=40), SCREEN_LINE] = "name",
    desc: bool = False,
) -> tuple[WebUser, portfolio.Portfolio]:
    """The signed-in user's portfolio, filtered and sorted as the query asks (page and CSV)."""
    user = await signed_in(request, session)
    if tier and tier not in Tier.__members__:
        raise HTTPException(422, detail=f"tier: one of {', '.join(Tier)}")
    if status and status not in PartnerStatus.__members__:
        raise HTTPException(422, detail=f"status: one of {', '.join(PartnerStatus)}")
    try:
        q = clean_text(q)
    except ValueError as err:
        raise HTTPException(422, detail=f"q: {err}") from err
    filters = portfolio.Filters(q=q, tier=tier, status=status, sort=sort, desc=desc)
    return user, await portfolio.build(session, user.principal, filters)


PortfolioDep = Annotated[tuple[WebUser, portfolio.Portfolio], Depends(portfolio_of)]


@router.get("/portfolio")
async def portfolio_page(request: Request, found: PortfolioDep):
    user, data = found
    return render(request, "portfolio", user, portfolio=data, tiers=list(Tier), statuses=list(PartnerStatus))


@router.get("/portfolio.csv")
async def portfolio_csv(found: PortfolioDep):
    return Response(
        portfolio.to_csv(found[1]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="portfolio.csv"'},
    )


# ------------------------------------------------------------------ Partner


@router.get("/partners/{partner_id}")
async def partner_page(partner_id: uuid.UUID, request: Request, session: SessionDep, settings: SettingsDep):
    user = await signed_in(request, session)
    partner = await load_partner(session, partner_id, user.principal)
    cam = await session.get(Cam, partner.cam_id) if partner.cam_id else None
    records = (
        await session.scalars(
            select(JourneyRecord)
            .where(JourneyRecord.partner_id == partner.id)
            .order_by(JourneyRecord.journey, JourneyRecord.workflow_id)
        )
    ).all()
    events = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.partner_id == partner.id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(200)
        )
    ).all()
    names = await actor_names(session, [e.actor for e in events])
    policy = (await repo.current_policy(session)).policy
    ctx = TodayContext(session=session, principal=user.principal, policy=policy, now=datetime.now(UTC))
    sections = [s for s in [await fn(session, partner, ctx) for fn in SECTIONS.values()] if s is not None]
    return render(
        request,
        "partner",
        user,
        partner=partner,
        cam=cam,
        journeys=records,
        events=events,
        names=names,
        ui=lambda wid: temporal_ui(settings, wid),
        now=ctx.now,
        policy=policy,
        sections=sorted(sections, key=lambda s: (s.order, s.title)),
    )


# ------------------------------------------------------------------ Ops


@router.get("/ops")
async def ops_page(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    require_ops(user)
    policy = (await repo.current_policy(session)).policy
    attention = (
        await session.scalars(
            select(JourneyRecord)
            .where(JourneyRecord.attention.is_not(None))
            .order_by(JourneyRecord.updated_at)
            .limit(100)
        )
    ).all()
    cutoff = datetime.now(UTC) - timedelta(minutes=policy.ops.retrying_minutes)
    unsent = (
        await session.scalars(
            select(OutboxMessage)
            .where(
                (OutboxMessage.status == "failed")
                | ((OutboxMessage.status == "pending") & (OutboxMessage.created_at < cutoff))
            )
            .order_by(OutboxMessage.created_at.desc())
            .limit(100)
        )
    ).all()
    workload = await today.workload(session)
    handovers = await handover.recent(session)
    own = (await today.collect(session, user.principal)).items
    operators = (await session.scalars(select(WebOperator).order_by(WebOperator.email))).all()
    return render(
        request,
        "ops",
        user,
        attention=attention,
        unsent=unsent,
        workload=workload,
        handovers=handovers,
        ops_items=len(own),
        operators=operators,
        retrying_minutes=policy.ops.retrying_minutes,
        tiers=list(Tier),
        journeys=_journey_names(),
        query=None,
        found=None,
        search={},
        error=None,
    )


def _journey_names() -> list[str]:
    return [spec.name for spec in registry.JOURNEYS]


@router.post("/ops/operators")
async def add_operator(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320), SCREEN_LINE],
    name: Annotated[str, Form(max_length=200), SCREEN_LINE],
    approver_level: Annotated[int, Form(ge=1, le=20)] = 1,
):
    user = await signed_in(request, session, form=True)
    require_ops(user)
    try:
        address = normalize_email(email.strip())
        name = clean_text(name)
    except ValueError as err:
        return redirect("/web/ops", f"operator: {err}", "error")
    if not name:
        return redirect("/web/ops", "operator: a name is needed", "error")
    session.add(WebOperator(email=address, name=name, approver_level=approver_level, created_by=user.principal.actor))
    try:
        await repo.claim_step(
            session,
            key=None,
            actor=user.principal.actor,
            action="web.operator_added",
            detail={"email": address, "approver_level": approver_level},
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return redirect("/web/ops", f"operator: {address} may already sign in", "error")
    return redirect("/web/ops", f"{address} may now sign in as ops.")


@router.post("/ops/operators/{operator_id}/remove")
async def remove_operator(request: Request, session: SessionDep, operator_id: uuid.UUID):
    """Offboarding: the operator signs in no more and every session of theirs ends at once."""
    user = await signed_in(request, session, form=True)
    require_ops(user)
    operator = await session.get(WebOperator, operator_id)
    if operator is None:
        return redirect("/web/ops", f"operator: no operator {operator_id}", "error")
    ended = await offboarding.end_sessions(session, operator_id=operator.id)
    await repo.claim_step(
        session,
        key=None,
        actor=user.principal.actor,
        action="web.operator_removed",
        detail={"operator_id": str(operator.id), "email": operator.email, "sessions_ended": ended},
    )
    await session.delete(operator)
    await session.commit()
    return redirect("/web/ops", f"{operator.email} may no longer sign in; {ended} session(s) ended.")


SEARCH_VALUE = re.compile(r"^[a-z0-9_\-]{1,60}$")


@router.get("/ops/journeys")
async def journeys_search(
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    partner_id: Annotated[str, Query(max_length=60), SCREEN_LINE] = "",
    cam_id: Annotated[str, Query(max_length=60), SCREEN_LINE] = "",
    tier: Annotated[str, Query(max_length=20), SCREEN_LINE] = "",
    journey: Annotated[str, Query(max_length=20), SCREEN_LINE] = "",
    state: Annotated[str, Query(max_length=60), SCREEN_LINE] = "",
):
    """Journeys found with a Temporal visibility query on the search attributes."""
    user = await signed_in(request, session)
    require_ops(user)
    search = {
        "PartnerId": partner_id.strip(),
        "CamId": cam_id.strip(),
        "Tier": tier,
        "Journey": journey,
        "JourneyState": state.strip(),
    }
    error = next(
        (
            f"{k}: letters, digits, '-' and '_' only"
            for k, v in search.items()
            if v and not SEARCH_VALUE.match(v.lower())
        ),
        None,
    )
    query = " AND ".join(f"{k} = '{v}'" for k, v in search.items() if v) or "ExecutionStatus = 'Running'"
    found: list[dict[str, Any]] = []
    if error is None:
        await session.close()
        try:
            async with asyncio.timeout(15):
                async for wf in temporal.list_workflows(query, limit=100):
                    attrs = {k.name: v for k, v in ((p.key, p.value) for p in wf.typed_search_attributes)}
                    found.append(
                        {
                            "id": wf.id,
                            "type": wf.workflow_type,
                            "status": wf.status.name if wf.status else "",
                            "start": wf.start_time,
                            "attrs": attrs,
                            "ui": temporal_ui(settings, wf.id),
                        }
                    )
        except TimeoutError:
            error = "Temporal did not answer the search within 15 s; try again"
    return render(
        request,
        "journeys",
        user,
        422 if error else 200,
        query=query,
        found=found,
        search=search,
        error=error,
        tiers=list(Tier),
        journeys=_journey_names(),
    )


@router.get("/ops/retrying")
async def retrying_page(request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep):
    """Steps failing transiently for longer than the policy's `ops.retrying_minutes` (what
    `GET /ops/retrying` answers), with their attempts and last error."""
    user = await signed_in(request, session)
    require_ops(user)
    minutes = (await repo.current_policy(session)).policy.ops.retrying_minutes
    try:
        found = await ops_api.retrying(
            principal=user.principal, session=session, temporal=temporal, older_than_minutes=minutes, limit=100
        )
        error = None
    except (HTTPException, DomainError) as err:
        found, error = [], str(err.detail)
    return render(
        request,
        "retrying",
        user,
        504 if error else 200,
        found=found,
        error=error,
        minutes=minutes,
        ui=lambda wid: temporal_ui(settings, wid),
    )


# ------------------------------------------------------------------ Ops: the policy


@router.get("/ops/policy")
async def policy_page(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    require_ops(user)
    current = await repo.current_policy(session)
    fields = policy_form.flatten(current.policy.model_dump(mode="json"))
    return render(request, "policy", user, version=current.version, fields=fields, errors={}, changes=None, proposed="")


@router.post("/ops/policy")
async def policy_preview(request: Request, session: SessionDep):
    """Validate the edited fields: errors next to each field, or the diff to confirm."""
    user = await signed_in(request, session, form=True)
    require_ops(user)
    current = await repo.current_policy(session)
    before = current.policy.model_dump(mode="json")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and k != security.CSRF_FIELD}
    checked = policy_form.check(before, form)
    shown = policy_form.flatten(checked.proposed)
    if checked.policy is None:
        return render(
            request,
            "policy",
            user,
            422,
            version=current.version,
            fields=shown,
            errors=checked.errors,
            changes=None,
            proposed="",
        )
    after = checked.policy.model_dump(mode="json")
    return render(
        request,
        "policy",
        user,
        version=current.version,
        fields=shown,
        errors={},
        changes=policy_form.diff(before, after),
        proposed=policy_form.encode(after),
    )


@router.post("/ops/policy/save")
async def policy_save(
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    proposed: Annotated[str, Form(max_length=200_000), SCREEN_TEXT],
    base_version: Annotated[int, Form(ge=1, le=2**31 - 1)],
):
    user = await signed_in(request, session, form=True)
    require_ops(user)
    current = await repo.current_policy(session)
    if current.version != base_version:
        return redirect(
            "/web/ops/policy",
            f"the policy changed meanwhile (now version {current.version}); review your edit again",
            "error",
        )
    try:
        body = ProgramPolicy.model_validate_json(proposed)
    except ValueError as err:
        return redirect("/web/ops/policy", f"the policy was not saved: {err}", "error")
    saved = await policy_api.put_policy(
        body=body, principal=user.principal, session=session, temporal=temporal, settings=settings
    )
    return redirect("/web/ops/policy", f"Saved as policy version {saved.version}; journeys started from now on use it.")
