"""The deal registration journey's service: registration with the conflict check (under
advisory locks) and the certification gate, decisions, stage changes, extensions, the read
model and the one-click decision links. The router only translates HTTP."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import Row, Select, Subquery, bindparam, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys, links, pagination
from api.auth import Principal, scope_to_principal
from api.deps import Creation, check_partner, load_partner
from api.errors import status_of
from api.idempotency import Idempotency
from api.links import LinkRefused
from domain.enums import Role
from domain.errors import Conflict, DomainError, Invalid, NotFound, Refused, TimedOut
from domain.journeys import PROGRESS
from domain.policy import ProgramPolicy
from journeys.cert import contract as cert
from journeys.deal.domain import (
    CHANGE_STAGE,
    DECIDE,
    JOURNEY,
    OPEN_STATES,
    DealDecision,
    DealInput,
    DealProgress,
    DealState,
    DecisionResult,
    normalize_company_name,
)
from journeys.deal.links import DECISION, DealLinkClaims
from journeys.deal.models import Deal
from journeys.deal.schemas import DealCreate, DealOut
from journeys.leads import contract as leads
from journeys.mdf import contract as mdf
from store import locks, repo
from store.models import Partner

R = TypeVar("R")


async def deal_for(session: AsyncSession, deal_id: uuid.UUID, principal: Principal) -> tuple[Deal, Partner]:
    """The deal (404) and its partner, if the caller may act on it (403)."""
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"no deal with id {deal_id}")
    return deal, await load_partner(session, deal.partner_id, principal)


# ------------------------------------------------------------------ register


# Attempts at a registration whose conflict read, sent with the statement that waited for its
# locks, was overtaken by a registration committed meanwhile (`journeys.ReadChanged`).
REGISTER_ATTEMPTS = 3


async def register(
    ctx: Creation,
    body: DealCreate,
    partner_id: uuid.UUID,
    idem: Idempotency,
) -> dict:
    """Another partner's open registration of the same customer and category puts the deal in
    `conflict_review`; the same partner registering it again is refused with the existing id."""
    for _ in range(REGISTER_ATTEMPTS):
        try:
            return await _register_once(ctx, body, partner_id, idem)
        except journeys.ReadChanged:
            await ctx.session.rollback()  # nothing was written; decide again on what is committed now
    raise Conflict(
        f"registrations of {body.customer_domain} in {body.product_category} kept arriving at the same "
        "moment; nothing was registered, retry"
    )


async def _register_once(ctx: Creation, body: DealCreate, partner_id: uuid.UUID, idem: Idempotency) -> dict:
    session, principal = ctx.session, ctx.principal
    name_key = normalize_company_name(body.customer_name)
    # One statement: the partner (404, 403), its lapsed certification in the category, the newest
    # policy version, the first open registration of the customer in the category (this partner's
    # own first: refused), the lead the deal is credited to, and the locks serializing
    # registrations of one customer in one category (by domain and by name). Its snapshot may be
    # older than its locks (it waited for them), so the write sends the same read again, after
    # the locks, and what it finds there must be what was decided on (`NewJourney.check`): two
    # simultaneous submissions cannot both find the customer free.
    names = (
        f"deal:domain:{body.customer_domain}:{body.product_category}",
        f"deal:name:{name_key}:{body.product_category}",
    )
    customer = {
        "partner_id": partner_id,
        "category": body.product_category,
        "domain": body.customer_domain,
        "name_key": name_key,
    }
    read = (await session.execute(_registration_read(), customer | locks.lock_params(*names))).first()
    partner = check_partner(read[0] if read else None, partner_id, principal)
    assert read is not None  # the partner was found
    repo.saw_newest_policy(session, read.policy_version, read.policy_created_at)
    current = await repo.current_policy(session)  # pinned: later changes apply to later deals
    hold_reason = certification_gate(read, body.product_category, current.policy)
    if body.mdf_request_id is not None:
        if await mdf.request_partner(session, body.mdf_request_id) != partner.id:
            raise Invalid(f"mdf_request_id: no MDF request {body.mdf_request_id} of this partner")
    if body.lead_id is not None:
        await leads.check_named_lead(session, body.lead_id, partner.id)
    if await idem.stored() is not None:  # a concurrent retry committed meanwhile
        raise Conflict("a concurrent retry of this request was answered")
    if read.first_id is not None and read.first_partner_id == partner.id:
        raise Conflict(f"this partner already registered this deal: deal {read.first_id} ({read.first_state})")
    lead_id = body.lead_id or read.lead_id
    other = read.first_id
    conflict_with = str(other) if other else None  # in the start input and the audit row
    deal = Deal(
        id=uuid.uuid4(),
        partner_id=partner.id,
        customer_name=body.customer_name,
        customer_domain=body.customer_domain,
        customer_key=body.customer_domain,
        customer_name_key=name_key,
        product_category=body.product_category,
        amount_minor=int(body.amount * 100),
        currency=body.currency,
        expected_close_date=body.expected_close_date,
        stage=body.stage.value,
        state=(DealState.conflict_review if other else DealState.pending_approval).value,
        conflict_with=other,
        extensions_used=0,
        mdf_request_id=body.mdf_request_id,
        created_by=principal.actor,
        decided_by=None,  # set (not left unloaded): the answer is read from the row without a refresh
        decision_reason=None,
        protected_until=None,
    )
    start = journeys.start_input(
        DealInput,
        deal,
        partner,
        deal_id=str(deal.id),
        conflict_with=conflict_with,
        hold_reason=hold_reason,
        policy_version=current.version,
    )
    detail = {
        "deal_id": str(deal.id),
        "customer": body.customer_name,
        "category": body.product_category,
        "state": deal.state,
        "conflict_with": conflict_with,
        "hold_reason": hold_reason,
    }
    new = journeys.NewJourney(
        JOURNEY,
        deal,
        partner.id,
        deal.state,
        start,
        "deal.registered",
        detail,
        # what is decided on: the first open registration and its partner, not its state
        check=repo.Check(_first_open(), customer, {"first_id": other, "first_partner_id": read.first_partner_id}),
    )
    out = await journeys.create_and_start(ctx, new, answer=DealOut, idem=idem, what="registered")
    await leads.credit_registered_deal(
        ctx.temporal, lead_id, partner_id=partner.id, deal_id=deal.id, by=principal.actor
    )
    return out


@functools.cache
def _first_open() -> Subquery:
    """The first open registration of the customer in the category (by domain or name; this
    partner's own first, else the oldest): `first_id`, `first_partner_id`, `first_state`, no row
    if none. Sent twice by a registration (`register`): with its locks, and with its write."""
    partner_id = bindparam("partner_id", type_=Deal.partner_id.type)
    category = bindparam("category", type_=Deal.product_category.type)
    domain = bindparam("domain", type_=Deal.customer_key.type)
    return (
        select(Deal.id.label("first_id"), Deal.partner_id.label("first_partner_id"), Deal.state.label("first_state"))
        .where(
            Deal.product_category == category,
            Deal.state.in_([s.value for s in OPEN_STATES]),
            or_(Deal.customer_key == domain, Deal.customer_name_key == bindparam("name_key")),
        )
        .order_by((Deal.partner_id == partner_id).desc(), Deal.created_at)
        .limit(1)
        .subquery("first_open")
    )


@functools.cache
def _registration_read() -> Select:
    """`register`'s read (one row, none without the partner): the partner, its lapsed
    certification restricting the category (`lapsed_*`, NULLs: none; cert's contract), the newest
    policy version (`repo.newest_policy_version`: the key lookup that carried it may be kept,
    api/keycache.py), the first open registration (`_first_open`, NULLs: none), the lead a deal of
    this partner is credited to (`lead_id`, NULL: none) and the registration's two locks
    (`locks.taking`). Built once (every registration sends it)."""
    partner_id = bindparam("partner_id", type_=Partner.id.type)
    lapse = cert.restricting_lapse_of(partner_id, bindparam("category"))
    lapsed = (lapse.c[name].label(f"lapsed_{name}") for name in ("id", "track", "person_name", "expires_at"))
    newest = repo.newest_policy_version()
    first = _first_open()
    domain = bindparam("domain", type_=Deal.customer_key.type)
    category = bindparam("category", type_=Deal.product_category.type)
    lead = leads.lead_of_registered_deal(partner_id, domain, category).label("lead_id")
    return (
        select(
            Partner,
            *lapsed,
            newest.c.policy_version,
            newest.c.policy_created_at,
            *first.c,
            lead,
            *locks.taking(2),
        )
        .select_from(Partner)
        .outerjoin(lapse, true())
        .outerjoin(newest, true())
        .outerjoin(first, true())
        .where(Partner.id == partner_id)
    )


def certification_gate(read: Row, category: str, policy: ProgramPolicy) -> str | None:
    """A lapsed certification restricts deal registration in its category (unless another one
    of the partner's certifications in that category is current): refused, or per policy held
    for review (the returned reason)."""
    if read.lapsed_id is None:  # `_registration_read`'s row
        return None
    reason = (
        f"the {read.lapsed_track} certification of {read.lapsed_person_name} (certification {read.lapsed_id}) "
        f"lapsed on {read.lapsed_expires_at:%Y-%m-%d}"
    )
    if policy.cert.lapse_action == "review":
        return reason
    raise Refused(
        f"deal registration in {category} is restricted: {reason}; renew it to register deals in this category",
    )


# ------------------------------------------------------------------ read


async def list_deals(
    session: AsyncSession,
    principal: Principal,
    *,
    partner_id: uuid.UUID | None,
    cam_id: uuid.UUID | None,
    state: DealState | None,
    expiring_within_days: float | None,
    limit: int,
    offset: int,
    after: uuid.UUID | None = None,
) -> list[Deal]:
    stmt = select(Deal).join(Partner, Partner.id == Deal.partner_id).order_by(Deal.created_at, Deal.id)
    stmt = await pagination.after(session, stmt, after, Deal.created_at, Deal.id)
    stmt = scope_to_principal(stmt, principal, Deal.partner_id)
    if partner_id:
        stmt = stmt.where(Deal.partner_id == partner_id)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if state:
        stmt = stmt.where(Deal.state == state.value)
    if expiring_within_days is not None:
        until = datetime.now(UTC) + timedelta(days=expiring_within_days)
        stmt = stmt.where(Deal.state == DealState.approved.value, Deal.protected_until <= until)
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())


# ------------------------------------------------------------------ act


def check_not_partner(principal: Principal, what: str) -> None:
    if principal.role == Role.partner:
        raise Refused(f"a partner cannot decide on its own {what}")


async def update(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    deal_id: uuid.UUID,
    update_name: str,
    arg: BaseModel,
    result_type: type[R],
    *,
    deadline: float,
    decision_on: str | None = None,
) -> R:
    """A workflow update on a deal the caller may act on (and, for a decision, is not the partner's
    own): the session is closed before waiting, the answer has a deadline."""
    await deal_for(session, deal_id, principal)
    if decision_on is not None:
        check_not_partner(principal, decision_on)
    await session.close()  # hold no connection while the journey answers
    return await journeys.run_update(
        client, JOURNEY, deal_id, update_name, arg, result_type, deadline=deadline, progress=progress_of(deal_id)
    )


def progress_of(deal_id: object) -> str:
    return f"/deals/{deal_id}/progress"


async def change_stage(client: Client, deal: Deal, change) -> None:
    if deal.state != DealState.approved.value:
        raise Conflict(f"deal is {deal.state}: only an approved deal changes stage")
    progress = await journeys.query(client, JOURNEY, deal.id, PROGRESS, DealProgress)
    if progress.stage_changes_left == 0:
        raise Conflict(f"deal {deal.id} has used every stage change the policy allows; ask ops if it must move again")
    await journeys.signal(client, JOURNEY, deal.id, CHANGE_STAGE, change)


# ------------------------------------------------------------------ one-click links (the token is the credential)


async def link_claims(session: AsyncSession, secret: str, token: str) -> DealLinkClaims:
    return await links.claims_of(session, secret, token, DECISION)


async def apply_link(
    session: AsyncSession, client: Client, secret: str, token: str, reason: str, *, deadline: float
) -> DecisionResult:
    """Confirming applies the decision exactly once: the link's id is recorded in the same
    transaction, and a concurrent second use waits for it and is refused."""
    claims = await link_claims(session, secret, token)
    deal_id = uuid.UUID(claims.deal_id)
    await links.use(session, claims)  # used from now on: a concurrent second use is refused
    decision = DealDecision(
        decision=claims.decision, by=claims.approver, reason=reason.strip() or f"{claims.decision} by one-click link"
    )
    try:
        return await journeys.run_update(
            client,
            JOURNEY,
            deal_id,
            DECIDE,
            decision,
            DecisionResult,
            deadline=deadline,
            progress=progress_of(deal_id),
        )
    except DomainError as err:
        if isinstance(err, TimedOut):  # not taken: the link may be used again
            await links.release(session, claims)
        raise LinkRefused(status_of(err), err.detail) from err
