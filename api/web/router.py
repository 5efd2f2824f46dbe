"""The CAM workspace's pages: Today, Portfolio (and its CSV), Partner, Ops (policy, journeys,
stuck journeys, CAM workload, operators). Every action goes through the same services and
workflow updates as the JSON API (`api/<journey>/service.py`), with the signed-in user as the
same `Principal`, so the rules and the audit trail are one. Every form carries the session's
CSRF token; every action answers with a redirect (post/redirect/get) and a notice."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys, offboarding
from api.deps import SessionDep, SettingsDep, TemporalDep, load_partner
from api.errors import status_of
from api.routers import ops as ops_api
from api.routers import policy as policy_api
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from api.web import policy_form, portfolio, security, today
from api.web.items import SECTIONS, TodayContext
from api.web.pages import WebRoute, page
from api.web.security import WebUser
from core import registry
from core.settings import Settings
from domain.enums import PartnerStatus, Tier
from domain.errors import DomainError
from domain.journeys import PROGRESS
from domain.policy import ProgramPolicy
from domain.types import clean_text, normalize_email
from journeys.cert.models import Certification
from journeys.deal import service as deal_service
from journeys.deal.domain import (
    DECIDE,
    DECIDE_EXTENSION,
    DealDecision,
    DealProgress,
    Decision,
    DecisionResult,
    ExtensionDecision,
    ExtensionResult,
)
from journeys.deal.domain import JOURNEY as DEAL
from journeys.deal.models import Deal
from journeys.onboarding import service as onboarding_service
from journeys.onboarding.models import PartnerMilestone
from journeys.onboarding.schemas import MILESTONE_KEY
from store import repo
from store.models import ApiKey, AuditEvent, Cam, JourneyRecord, OutboxMessage, Partner
from store.models.web import WebOperator

router = APIRouter(prefix=security.PREFIX, route_class=WebRoute, include_in_schema=False)
FLASH_COOKIE = "camlights_flash"


# ------------------------------------------------------------------ helpers


async def signed_in(request: Request, session: AsyncSession, *, form: bool = False) -> WebUser:
    user = await security.current_user(request, session)
    if form:
        await security.check_csrf(request, user.csrf_token)
    return user


def require_ops(user: WebUser) -> None:
    if not user.is_ops:
        raise HTTPException(403, detail="this page is for channel operations; your account is a CAM")


def redirect(target: str, notice: str | None = None, level: str = "ok") -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    if notice:
        value = base64.urlsafe_b64encode(json.dumps([level, notice[:500]]).encode()).decode()
        response.set_cookie(FLASH_COOKIE, value, path=security.PREFIX, httponly=True, samesite="lax", max_age=60)
    return response


def take_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        level, text = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return str(level), str(text)
    except (ValueError, TypeError):  # not ours: no notice
        return None


def render(request: Request, name: str, user: WebUser, status: int = 200, **context: Any) -> Response:
    response = page(name, status, user=user, csrf=user.csrf_token, flash=take_flash(request), **context)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=security.PREFIX)
    return response


def back_to(target: str) -> str:
    return target if re.fullmatch(r"/web/[A-Za-z0-9/_\-.?=&%]*", target or "") else f"{security.PREFIX}/"


def temporal_ui(settings: Settings, workflow_id: str) -> str:
    base = (settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}").rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


async def actor_names(session: AsyncSession, who: list[str]) -> dict[str, str]:
    """Actors in words: 'cam:<id>' -> 'Casey (CAM)', 'ops:<id>' -> 'Olga (ops)' or 'ops (API key
    ab12...)', 'partner:<id>' -> 'Contoso Cloud (partner)', 'journey:deal-<id>' -> 'the deal journey'."""
    ids: dict[str, set[uuid.UUID]] = {"cam": set(), "ops": set(), "partner": set()}
    for actor in who:
        kind, _, ident = (actor or "").partition(":")
        if kind in ids:
            try:
                ids[kind].add(uuid.UUID(ident))
            except ValueError:
                pass
    names: dict[str, str] = {}
    lookups = (
        ("cam", select(Cam.id, Cam.name).where(Cam.id.in_(ids["cam"])), "{} (CAM)"),
        ("ops", select(WebOperator.id, WebOperator.name).where(WebOperator.id.in_(ids["ops"])), "{} (ops)"),
        ("ops", select(ApiKey.id, ApiKey.prefix).where(ApiKey.id.in_(ids["ops"])), "ops (API key {}…)"),
        ("partner", select(Partner.id, Partner.name).where(Partner.id.in_(ids["partner"])), "{} (partner)"),
    )
    for kind, stmt, shape in lookups:
        if ids[kind]:
            for row_id, name in (await session.execute(stmt)).all():
                names.setdefault(f"{kind}:{row_id}", shape.format(name))
    for actor in who:
        if (actor or "").startswith("journey:"):
            names[actor] = f"the {actor.removeprefix('journey:').split('-', 1)[0]} journey"
    return {a: names.get(a, a) for a in who}


# ------------------------------------------------------------------ Today


@router.get("/")
async def today_page(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    listing = await today.collect(session, user.principal)
    return render(request, "today", user, today=listing, now=listing.now)


async def _already_decided(session: AsyncSession, deal_id: uuid.UUID, message: str) -> str:
    """Who decided a deal that another decision beat, and when (once the journey recorded it)."""
    deal = None
    for _ in range(30):  # the winner's decision is being recorded: up to ~3 s
        session.expire_all()
        deal = await session.get(Deal, deal_id)
        if deal is not None and deal.decided_by and deal.decided_at:
            break
        await asyncio.sleep(0.1)
    if deal is None or not deal.decided_by:
        return f"This deal was already decided ({message})."
    who = (await actor_names(session, [deal.decided_by]))[deal.decided_by]
    at = deal.decided_at.astimezone(UTC) if deal.decided_at else None
    return f"Already decided by {who} at {at:%Y-%m-%d %H:%M:%S} UTC: the deal is {deal.state}."


@dataclass(frozen=True)
class DecisionForm:
    """A decision posted from a page (deal or extension): who, the answer, the reason, where to go back."""

    user: WebUser
    session: AsyncSession
    temporal: Client
    deadline: float
    decision: Decision
    reason: str
    back: str


async def decision_form(
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    decision: Annotated[Decision, Form()],
    reason: Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)] = "",
    back: Annotated[str, Form(max_length=500), SCREEN_LINE] = "/web/",
) -> DecisionForm:
    user = await signed_in(request, session, form=True)
    return DecisionForm(user, session, temporal, settings.update_deadline_seconds, decision, reason, back_to(back))


DecisionFormDep = Annotated[DecisionForm, Depends(decision_form)]


@router.post("/deals/{deal_id}/decision")
async def decide_deal(deal_id: uuid.UUID, form: DecisionFormDep):
    """Approve or reject through the journey's `decide` update; a decision that lost the race
    says who decided first and when."""
    session, principal = form.session, form.user.principal
    try:
        reason = clean_text(form.reason, multiline=True)
    except ValueError as err:
        return redirect(form.back, f"reason: {err}", "error")
    if form.decision == Decision.reject and not reason:
        return redirect(form.back, "reason: say why the deal is rejected (the partner reads it)", "error")
    deal, _ = await deal_service.deal_for(session, deal_id, principal)
    what = deal.customer_name
    decision = DealDecision(
        decision=form.decision, reason=reason or "approved in the CAM workspace", by=principal.actor
    )
    try:
        result = await deal_service.update(
            session, form.temporal, principal, deal_id, DECIDE, decision, DecisionResult, deadline=form.deadline,
            decision_on="deal",
        )  # fmt: skip
    except (HTTPException, DomainError) as err:
        if status_of(err) == 409:
            return redirect(form.back, await _already_decided(session, deal_id, str(err.detail)), "info")
        return redirect(form.back, f"{what}: {err.detail}", "info" if status_of(err) == 202 else "error")
    return redirect(form.back, f"{what}: {result.state.value}.")


@router.post("/deals/{deal_id}/extension")
async def decide_extension(deal_id: uuid.UUID, form: DecisionFormDep):
    """Grant or refuse a pending extension request through the journey's `decide_extension` update."""
    principal = form.user.principal
    try:
        decision = ExtensionDecision(
            decision=form.decision, reason=clean_text(form.reason, multiline=True), by=principal.actor
        )
        result = await deal_service.update(
            form.session, form.temporal, principal, deal_id, DECIDE_EXTENSION, decision, ExtensionResult,
            deadline=form.deadline, decision_on="extension",
        )  # fmt: skip
    except ValueError as err:
        return redirect(form.back, f"reason: {err}", "error")
    except (HTTPException, DomainError) as err:
        return redirect(form.back, f"extension: {err.detail}", "info" if status_of(err) == 409 else "error")
    return redirect(form.back, f"Extension {result.status}.")


@router.post("/partners/{partner_id}/milestones/{key}")
async def milestone_done(
    partner_id: uuid.UUID,
    key: Annotated[str, Path(pattern=MILESTONE_KEY)],
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    back: Annotated[str, Form(max_length=500), SCREEN_LINE] = "/web/",
):
    user = await signed_in(request, session, form=True)
    partner = await load_partner(session, partner_id, user.principal)
    try:
        report = await onboarding_service.report_milestone(
            session, temporal, user.principal, partner, key, deadline=settings.update_deadline_seconds
        )
    except (HTTPException, DomainError) as err:
        return redirect(back_to(back), f"milestone {key}: {err.detail}", "error")
    note = "was already done" if report.already_done else "recorded as done"
    return redirect(back_to(back), f"Milestone {key} {note}.")


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
    deals = (
        await session.scalars(select(Deal).where(Deal.partner_id == partner.id).order_by(Deal.created_at.desc()))
    ).all()
    certs = (
        await session.scalars(
            select(Certification).where(Certification.partner_id == partner.id).order_by(Certification.expires_at)
        )
    ).all()
    milestones = (
        await session.scalars(
            select(PartnerMilestone).where(PartnerMilestone.partner_id == partner.id).order_by(PartnerMilestone.due_at)
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
    names = await actor_names(session, [e.actor for e in events] + [d.decided_by or "" for d in deals])
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
        deals=deals,
        certs=certs,
        milestones=milestones,
        events=events,
        names=names,
        ui=lambda wid: temporal_ui(settings, wid),
        now=datetime.now(UTC),
        awaiting=("pending_approval", "conflict_review"),
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
    own = (await today.collect(session, user.principal)).items
    operators = (await session.scalars(select(WebOperator).order_by(WebOperator.email))).all()
    return render(
        request,
        "ops",
        user,
        attention=attention,
        unsent=unsent,
        workload=workload,
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
            session, key=None, actor=user.principal.actor, action="web.operator_added",
            detail={"email": address, "approver_level": approver_level},
        )  # fmt: skip
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
        session, key=None, actor=user.principal.actor, action="web.operator_removed",
        detail={"operator_id": str(operator.id), "email": operator.email, "sessions_ended": ended},
    )  # fmt: skip
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
        found = await ops_api.retrying(principal=user.principal, session=session, temporal=temporal,
                                       older_than_minutes=minutes, limit=100)  # fmt: skip
        error = None
    except (HTTPException, DomainError) as err:
        found, error = [], str(err.detail)
    return render(request, "retrying", user, 504 if error else 200, found=found, error=error, minutes=minutes,
                  ui=lambda wid: temporal_ui(settings, wid))  # fmt: skip


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


# ------------------------------------------------------------------ deal progress for the partner page (live)


@router.get("/deals/{deal_id}")
async def deal_page(
    deal_id: uuid.UUID, request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    user = await signed_in(request, session)
    deal, partner = await deal_service.deal_for(session, deal_id, user.principal)
    await session.close()
    try:
        progress = await journeys.query(temporal, DEAL, deal_id, PROGRESS, DealProgress)
    except (HTTPException, DomainError):
        progress = None
    return render(
        request,
        "deal",
        user,
        deal=deal,
        partner=partner,
        progress=progress,
        ui=temporal_ui(settings, f"{DEAL}-{deal_id}"),
    )
