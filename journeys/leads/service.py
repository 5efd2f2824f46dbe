"""The lead distribution journey's service: intake (bounded, duplicates refused naming the open
lead, a protecting deal's partner first), the read model scoped to the caller (a partner sees only
the leads offered to it), answers to offers, recall, the deal link and the one-click links."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.webhooks import wake_stream, write_event
from api import journeys, links
from api.auth import Principal
from api.errors import status_of
from api.links import LinkRefused
from core.journey import CrmContext, CrmOutcome
from domain.enums import Role
from domain.errors import Conflict, DomainError, Invalid, NotFound, Pending, Refused, TooLarge, Unavailable
from domain.journeys import workflow_id
from domain.webhooks import PROGRAM_STREAM
from journeys.deal import contract as deals
from journeys.leads import starts
from journeys.leads.activities import candidates, routing_event
from journeys.leads.domain import (
    DEAL_REGISTERED,
    JOURNEY,
    OPEN_STATES,
    RESPOND,
    DealRegistered,
    LeadFacts,
    LeadInput,
    LeadState,
    OfferResponse,
    OfferState,
    Pick,
    ResponseResult,
    route,
)
from journeys.leads.links import OFFER, LeadLinkClaims
from journeys.leads.models import Lead, LeadOffer
from journeys.leads.policy import LeadsPolicy, RoutingRule
from journeys.leads.schemas import (
    CrmLead,
    DryRunLead,
    DryRunOut,
    ImportOut,
    ImportRowError,
    LeadCreate,
    SourceAttribution,
)
from store import locks, repo
from store.models import AuditEvent, Partner
from store.models.integrations import WebhookEvent

R = TypeVar("R")


async def create(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    body: LeadCreate,
    task_queue: str,
    *,
    crm_event_id: str | None = None,
) -> Lead:
    """Write the lead and start `leads-{id}`; a start Temporal refuses removes the lead (503)."""
    current = await repo.current_policy(session)
    rules = current.policy.section(LeadsPolicy)
    if rules.categories and body.product_category not in rules.categories:
        raise Invalid(f"product_category: unknown; one of {', '.join(rules.categories)}")
    # One customer and category, and one external id, at a time (a concurrent twin waits, then is refused).
    external = [f"lead:external:{body.external_id}"] if body.external_id is not None else []
    await locks.lock(session, f"lead:{body.domain}:{body.product_category}", *external)
    if body.external_id is not None:
        same = await session.scalar(select(Lead).where(Lead.external_id == body.external_id))
        if same is not None:
            raise Conflict(f"external_id {body.external_id} is lead {same.id} ({same.state})")
    open_lead = await session.scalar(
        select(Lead).where(
            Lead.domain == body.domain,
            Lead.product_category == body.product_category,
            Lead.state.in_([s.value for s in OPEN_STATES]),
        )
    )
    if open_lead is not None:
        raise Conflict(
            f"a lead for {body.domain} in {body.product_category} is open: lead {open_lead.id} ({open_lead.state})",
        )
    protected = await deals.protecting_partner(session, body.domain, body.product_category)
    lead = Lead(
        id=uuid.uuid4(),
        external_id=body.external_id,
        company=body.company,
        domain=body.domain,
        contact_name=body.contact_name,
        contact_email=str(body.contact_email),
        country=body.country,
        region=body.region,
        product_category=body.product_category,
        value_minor=int(body.value * 100) if body.value is not None else None,
        currency=body.currency,
        source=body.source,
        notes=body.notes,
        state=LeadState.new.value,
        routing=[],
        policy_version=current.version,
        created_by=principal.actor,
    )
    inp = LeadInput(
        lead_id=str(lead.id),
        company=lead.company,
        country=lead.country,
        region=lead.region,
        product_category=lead.product_category,
        value_minor=lead.value_minor,
        currency=lead.currency,
        source=lead.source,
        protected_partner_id=str(protected) if protected else None,
        policy_version=current.version,
    )
    lead.start_input, lead.task_queue = inp.model_dump(mode="json"), task_queue  # for the reconciler
    session.add(lead)
    created_key = f"{workflow_id(JOURNEY, lead.id)}:created"
    await repo.claim_step(
        session,
        key=created_key,
        actor=principal.actor,
        action="leads.created",
        journey=JOURNEY,
        detail={"lead_id": str(lead.id), "company": body.company, "source": body.source, "crm_event_id": crm_event_id},
    )
    protecting = {"protected_partner_id": str(protected) if protected else None}
    created = routing_event("lead.created", lead, principal.actor, datetime.now(UTC), **protecting)
    _, woken = await write_event(session, created)  # with the lead: both or neither
    await session.commit()
    start = starts.pending_start(lead)
    try:
        await journeys.launch_start(client, start)
    except journeys.StartRefused as err:
        await session.execute(delete(AuditEvent).where(AuditEvent.idempotency_key == created_key))
        await session.execute(delete(Lead).where(Lead.id == lead.id))
        await session.execute(delete(WebhookEvent).where(WebhookEvent.idempotency_key == created.idempotency_key))
        await session.commit()
        raise Unavailable(f"could not start the lead journey ({err}); nothing was written") from err
    except journeys.StartUncertain as err:
        raise Unavailable(
            f"lead {lead.id} was created, but Temporal did not confirm the start of its journey ({err}); "
            "it will be started automatically",
            headers={"Retry-After": "5"},
        ) from err
    await starts.confirm(session, start.workflow_id)
    for subscription_id in woken:
        await wake_stream(client, task_queue, subscription_id, PROGRAM_STREAM)
    await session.refresh(lead)
    return lead


async def crm_lead_created(ctx: CrmContext, event_id: str, body: CrmLead) -> CrmOutcome:
    """A CRM's `lead.created` (the manifest's `crm_events`): created as `POST /leads` creates it,
    idempotent on the CRM's id of the lead (`external_id`: received before, the lead is the answer
    and nothing is done again); a customer with an open lead is refused naming it (409)."""
    try:
        lead = await create(ctx.session, ctx.client, ctx.principal, body, ctx.task_queue, crm_event_id=event_id)
    except Conflict:
        await ctx.session.rollback()
        same = await ctx.session.scalar(select(Lead).where(Lead.external_id == body.external_id))
        if same is None:  # another open lead for the customer: refused, naming it
            raise
        return CrmOutcome(id=same.id, state=same.state, duplicate=True)
    return CrmOutcome(id=lead.id, state=lead.state)


# ------------------------------------------------------------------ read (scoped to the caller)


def visible(principal: Principal):
    """What the caller may see: ops everything; a CAM the leads offered to its portfolio; a partner
    the leads offered to it (never another partner's)."""
    if principal.role == Role.ops:
        return None
    offered = select(LeadOffer.lead_id).join(Partner, Partner.id == LeadOffer.partner_id)
    if principal.role == Role.cam:
        offered = offered.where(Partner.cam_id == principal.cam_id)
    else:
        offered = offered.where(LeadOffer.partner_id == principal.partner_id)
    return exists(offered.where(LeadOffer.lead_id == Lead.id))


async def lead_for(session: AsyncSession, lead_id: uuid.UUID, principal: Principal) -> Lead:
    """The lead, if the caller may see it (404 otherwise: a partner learns nothing of others' leads)."""
    stmt = select(Lead).where(Lead.id == lead_id)
    scope = visible(principal)
    if scope is not None:
        stmt = stmt.where(scope)
    lead = await session.scalar(stmt)
    if lead is None:
        raise NotFound(f"no lead with id {lead_id}")
    return lead


async def list_leads(
    session: AsyncSession, principal: Principal, *, state: LeadState | None, limit: int, offset: int
) -> list[Lead]:
    stmt = select(Lead).order_by(Lead.created_at, Lead.id)
    scope = visible(principal)
    if scope is not None:
        stmt = stmt.where(scope)
    if state is not None:
        stmt = stmt.where(Lead.state == state.value)
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())


async def attribution(session: AsyncSession, principal: Principal) -> list[SourceAttribution]:
    """Per source: leads, accepted, converted, won and the won revenue per currency, of the leads
    the caller may see. Won: the lead's credited deal closed won (the deal journey's contract)."""
    scope = visible(principal)
    where = [scope] if scope is not None else []
    accepted = exists(
        select(LeadOffer.lead_id).where(
            LeadOffer.lead_id == Lead.id, LeadOffer.state.in_([OfferState.accepted.value, OfferState.returned.value])
        )
    )
    counts = await session.execute(
        select(
            Lead.source,
            func.count(),
            func.count().filter(accepted),
            func.count().filter(Lead.state == LeadState.converted.value),
        )
        .where(*where)
        .group_by(Lead.source)
        .order_by(Lead.source)
    )
    won = deals.won_deals()
    revenue = await session.execute(
        select(Lead.source, won.c.currency, func.count(), func.sum(won.c.amount_minor))
        .join(won, won.c.id == Lead.deal_id)
        .where(*where)
        .group_by(Lead.source, won.c.currency)
    )
    by_source: dict[str, dict[str, int]] = {}
    won_count: dict[str, int] = {}
    for source, currency, n, total in revenue.all():
        by_source.setdefault(source, {})[currency] = int(total)
        won_count[source] = won_count.get(source, 0) + n
    return [
        SourceAttribution(
            source=source,
            leads=n,
            accepted=taken,
            converted=converted,
            won=won_count.get(source, 0),
            won_minor=by_source.get(source, {}),
            acceptance_rate=round(taken / n, 4) if n else None,
            conversion_rate=round(converted / taken, 4) if taken else None,
        )
        for source, n, taken, converted in counts.all()
    ]


# ------------------------------------------------------------------ act


def progress_of(lead_id: object) -> str:
    return f"/leads/{lead_id}"


async def update(
    session: AsyncSession,
    client: Client,
    lead_id: uuid.UUID,
    name: str,
    arg: BaseModel,
    result_type: type[R],
    *,
    deadline: float,
) -> R:
    await session.close()  # hold no connection while the journey answers
    return await journeys.run_update(
        client, JOURNEY, lead_id, name, arg, result_type, deadline=deadline, progress=progress_of(lead_id)
    )


async def respond(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    lead_id: uuid.UUID,
    *,
    deadline: float,
    **answer: Any,
) -> ResponseResult:
    """The partner answers its offer of a lead it may see (404 otherwise): the API's and the
    portal's one way in (the one-click links answer through `apply_link`)."""
    await lead_for(session, lead_id, principal)
    response = OfferResponse(partner_id=partner_of(principal), by=principal.actor, **answer)
    return await update(session, client, lead_id, RESPOND, response, ResponseResult, deadline=deadline)


def partner_of(principal: Principal) -> str:
    if principal.role != Role.partner or principal.partner_id is None:
        raise Refused("only the partner the lead is offered to answers it (a partner key)")
    return str(principal.partner_id)


async def link_deal(session: AsyncSession, client: Client, principal: Principal, lead: Lead, deal_id: uuid.UUID):
    partner_id = partner_of(principal)
    if lead.state != LeadState.accepted.value or str(lead.partner_id) != partner_id:
        raise Conflict(f"lead {lead.id} is {lead.state}: only the partner that accepted it links a deal")
    owner = await deals.deal_partner(session, deal_id)
    if owner is None or str(owner) != partner_id:
        raise Invalid(f"deal_id: no deal {deal_id} of this partner")
    await journeys.signal(
        client,
        JOURNEY,
        lead.id,
        DEAL_REGISTERED,
        DealRegistered(deal_id=str(deal_id), partner_id=partner_id, by=principal.actor),
    )
    return {"lead_id": str(lead.id), "deal_id": str(deal_id), "accepted": True}


# ------------------------------------------------------------------ one-click links (the token is the credential)


async def link_claims(session: AsyncSession, secret: str, token: str) -> LeadLinkClaims:
    """Genuine (403), not expired (410), not used yet (410)."""
    return await links.claims_of(session, secret, token, OFFER)


async def apply_link(
    session: AsyncSession, client: Client, secret: str, token: str, code: str, reason: str, *, deadline: float
) -> ResponseResult:
    """Confirming answers the offer exactly once (the link's id is recorded first)."""
    claims = await link_claims(session, secret, token)
    lead_id = uuid.UUID(claims.lead_id)
    await links.use(session, claims)  # used from now on: a concurrent second use is refused
    response: dict[str, Any] = {
        "partner_id": claims.approver.split(":", 1)[1],
        "response": claims.decision,
        "by": claims.approver,
        "reason": reason.strip(),
    }
    if claims.decision == "decline":
        response["reason_code"] = code
    try:
        return await update(
            session, client, lead_id, RESPOND, OfferResponse(**response), ResponseResult, deadline=deadline
        )
    except DomainError as err:
        if not isinstance(err, Pending):  # not taken: the link may be used again
            await links.release(session, claims)
        raise LinkRefused(status_of(err), err.detail) from err


# ------------------------------------------------------------------ CSV import


MAX_IMPORT_BYTES = 2_000_000
MAX_IMPORT_ROWS = 5000
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell


def parse_csv(raw: bytes) -> list[LeadCreate]:
    """Every row validated before anything is written: one error list per bad row (422)."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise TooLarge(f"a lead import is at most {MAX_IMPORT_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise Invalid("the CSV must be UTF-8") from err
    if "\x00" in text:
        raise Invalid("the CSV holds a NUL character")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(LeadCreate.model_fields)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in columns]
    if unknown or "external_id" not in header:
        raise Invalid(
            f"CSV header: unknown columns {unknown[:5]}; external_id is required; columns: "
            f"{', '.join(sorted(columns))}",
        )
    rows, errors = [], []
    for number, row in enumerate(reader, start=1):
        if number > MAX_IMPORT_ROWS:
            raise TooLarge(f"a lead import has at most {MAX_IMPORT_ROWS} rows")
        if None in row:
            errors.append(ImportRowError(row=number, errors=["more cells than columns"]))
            continue
        formulas = [k for k, v in row.items() if v and v.startswith(FORMULA_LEAD)]
        if formulas:
            errors.append(
                ImportRowError(row=number, errors=[f"{k}: a cell may not start like a formula" for k in formulas])
            )
            continue
        try:
            rows.append(LeadCreate.model_validate({k: v for k, v in row.items() if v not in ("", None)}))
        except ValidationError as err:
            msgs = [f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in err.errors(include_url=False)]
            errors.append(ImportRowError(row=number, errors=msgs))
    if errors:
        listed = "; ".join(f"row {e.row}: {', '.join(e.errors)}" for e in errors[:100])
        raise Invalid(f"nothing was imported; {len(errors)} row(s) refused: {listed}")
    return rows


async def import_leads(
    session: AsyncSession, client: Client, principal: Principal, raw: bytes, task_queue: str
) -> ImportOut:
    """Idempotent on each row's external_id: a row imported before is skipped, as is one whose
    customer has an open lead."""
    created, skipped = [], []
    for number, body in enumerate(parse_csv(raw), start=1):
        try:
            lead = await create(session, client, principal, body, task_queue)
        except Conflict as err:
            await session.rollback()
            skipped.append(ImportRowError(row=number, errors=[err.detail]))
            continue
        created.append(lead.id)
    return ImportOut(created=created, skipped=skipped)


# ------------------------------------------------------------------ dry run of a rule change


async def dry_run(session: AsyncSession, rules: list[RoutingRule], last: int) -> DryRunOut:
    """The last `last` leads routed (first offer) by the current rules and by the draft, each
    replayed in order so that round robin turns; nothing is written."""
    current = (await repo.current_policy(session)).policy.section(LeadsPolicy)
    try:
        draft = LeadsPolicy.model_validate({**current.model_dump(), "rules": [r.model_dump() for r in rules]})
    except ValidationError as err:
        raise Invalid(f"rules: {err.errors(include_url=False)[0]['msg']}") from err
    leads = list((await session.scalars(select(Lead).order_by(Lead.created_at.desc(), Lead.id).limit(last))).all())
    leads.reverse()
    base = await candidates(session)
    picks: dict[str, list[Pick]] = {}
    for name, policy in (("before", current), ("after", draft)):
        pool = {c.partner_id: c.model_copy() for c in base}
        picks[name] = []
        for lead in leads:
            facts = LeadFacts(
                lead_id=str(lead.id), country=lead.country, region=lead.region, product_category=lead.product_category
            )
            got = route(facts, list(pool.values()), policy, set(), 1)
            for pid in got.partners:
                pool[pid].last_offered_at = lead.created_at
            picks[name].append(got)
    rows = [
        DryRunLead(
            lead_id=lead.id,
            before=b.partners[0] if b.partners else None,
            after=a.partners[0] if a.partners else None,
            before_rule=b.rule,
            after_rule=a.rule,
        )
        for lead, b, a in zip(leads, picks["before"], picks["after"], strict=True)
    ]
    shares: dict[str, dict[str, float]] = {}
    for row in rows:
        for side, who in (("before", row.before), ("after", row.after)):
            entry = shares.setdefault(who or "unplaced", {"before": 0.0, "after": 0.0})
            entry[side] += 1 / len(rows)
    return DryRunOut(leads=rows, shares={k: {n: round(v, 4) for n, v in s.items()} for k, s in shares.items()})
