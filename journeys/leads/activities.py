"""Activities of the lead distribution journey: routing and writing offers (deadlines in the
partner's business hours), recording offers' outcomes and the lead's state, and the offer emails
with signed one-click accept / decline links."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, any_, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import queue_rows, resolve_recipients
from domain import actors
from domain.journeys import NotifyResult, StepResult
from domain.links import link_jti
from domain.policy import ProgramPolicy
from journeys.leads.calendar import add_business_hours
from journeys.leads.domain import (
    JOURNEY,
    Candidate,
    LeadActivity,
    LeadFacts,
    LeadStateInput,
    OfferedTo,
    OfferInput,
    OfferRecord,
    OfferResult,
    OfferState,
    Pick,
    SendOfferInput,
    route,
)
from journeys.leads.links import OFFER, LeadLinkClaims
from journeys.leads.models import Lead, LeadOffer, LeadPreference
from journeys.leads.policy import LeadsPolicy
from store import repo
from store.models import Partner

ANSWERS = ("accept", "decline")


def offer_window(policy: ProgramPolicy, at: datetime, tz: str, country: str) -> tuple[datetime, datetime | None]:
    """When an offer made at `at` expires and when its reminder goes, in the partner's business
    hours; a policy day shorter than 24 h (tests, demos) shrinks both in proportion."""
    rules = policy.section(LeadsPolicy)
    opts: dict[str, Any] = {
        "tz": tz,
        "country": country,
        "working_days": rules.working_days,
        "day_starts": rules.hours[0],
        "day_ends": rules.hours[1],
    }
    scale = policy.day_seconds / 86400
    ends = at + (add_business_hours(at, rules.offer_hours, **opts) - at) * scale
    if rules.reminder_hours <= 0:
        return ends, None
    remind = at + (add_business_hours(at, rules.offer_hours - rules.reminder_hours, **opts) - at) * scale
    return ends, remind


async def candidates(session: AsyncSession, country: str | None = None) -> list[Candidate]:
    """The partners as routing sees them (one query): preferences, open offers, acceptance history;
    with `country`, only those accepting leads whose territories cover it (their own country when
    they name none): the rest could not be picked anyway."""
    o = LeadOffer
    load = (
        select(
            o.partner_id,
            func.count().filter(o.state == OfferState.live.value).label("live"),
            func.count().filter(o.state == OfferState.accepted.value).label("accepted"),
            func.count().filter(o.state.in_(["accepted", "declined", "expired"])).label("answered"),
            func.max(o.offered_at).label("last_offered"),
            func.max(case((o.state == OfferState.accepted.value, o.answered_at))).label("last_accepted"),
        )
        .group_by(o.partner_id)
        .subquery()
    )
    stmt = (
        select(Partner.id, Partner.tier, Partner.country, LeadPreference, load)
        .outerjoin(LeadPreference, LeadPreference.partner_id == Partner.id)
        .outerjoin(load, load.c.partner_id == Partner.id)
    )
    if country is not None:
        own = and_(
            or_(LeadPreference.countries.is_(None), func.cardinality(LeadPreference.countries) == 0),
            Partner.country == country,
        )
        stmt = stmt.where(
            or_(LeadPreference.accepting.is_(None), LeadPreference.accepting.is_(True)),
            or_(own, literal(country) == any_(LeadPreference.countries)),
        )
    out = []
    for row in (await session.execute(stmt)).all():
        pref: LeadPreference | None = row.LeadPreference
        accepted, answered = row.accepted or 0, row.answered or 0
        out.append(
            Candidate(
                partner_id=str(row.id),
                tier=row.tier,
                country=row.country,
                countries=list(pref.countries) if pref else [],
                regions=list(pref.regions) if pref else [],
                categories=list(pref.categories) if pref else [],
                accepting=pref.accepting if pref else True,
                capacity=pref.capacity if pref else 10,
                open_offers=row.live or 0,
                performance=2 * (accepted + 1) / (answered + 2),
                last_offered_at=row.last_offered,
                last_accepted_at=row.last_accepted,
            )
        )
    return out


class LeadActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, link_secret: str, public_base_url: str, ops_email: str
    ):
        self.sessionmaker = sessionmaker
        self.link_secret = link_secret
        self.public_base_url = public_base_url.rstrip("/")
        self.ops_email = ops_email

    async def _lead(self, session: AsyncSession, lead_id: str) -> Lead:
        lead = await session.get(Lead, uuid.UUID(lead_id), with_for_update=True)
        if lead is None:
            raise ApplicationError(f"lead {lead_id} not found", type="LeadNotFound", non_retryable=True)
        return lead

    @activity.defn(name=LeadActivity.OFFER)
    async def offer(self, inp: OfferInput) -> OfferResult:
        async with self.sessionmaker() as session, session.begin():
            lead = await self._lead(session, inp.lead_id)
            done = next((step for step in lead.routing if step.get("key") == inp.idempotency_key), None)
            if done is not None:  # a retry: the same answer
                return OfferResult.model_validate(done["result"])
            snap = await repo.policy_version(session, inp.policy_version) or await repo.current_policy(session)
            policy = snap.policy
            facts = LeadFacts(
                lead_id=inp.lead_id, country=lead.country, region=lead.region, product_category=lead.product_category
            )
            if inp.to_partner_id is not None:
                pick = Pick(rule=None, partners=[inp.to_partner_id], reasons=[inp.reason or "offered by ops"])
            else:
                pick = route(
                    facts,
                    await candidates(session, lead.country),
                    policy.section(LeadsPolicy),
                    set(inp.excluded),
                    inp.offer_no,
                )
                pick.partners = pick.partners[: inp.limit]
            offers: list[OfferedTo] = []
            for i, pid in enumerate(pick.partners):
                partner = await session.get(Partner, uuid.UUID(pid))
                if partner is None:
                    pick.reasons.append(f"partner {pid} no longer exists")
                    continue
                pref = await session.get(LeadPreference, partner.id)
                tz = (pref.time_zone if pref else None) or policy.section(LeadsPolicy).default_time_zone
                expires, remind = offer_window(policy, inp.at, tz, partner.country)
                no = inp.offer_no + i
                session.add(
                    LeadOffer(
                        lead_id=lead.id,
                        offer_no=no,
                        partner_id=partner.id,
                        rule=pick.rule,
                        reasons=pick.reasons,
                        state=OfferState.live.value,
                        offered_at=inp.at,
                        expires_at=expires,
                        remind_at=remind,
                        step_key=inp.idempotency_key,
                    )
                )
                offers.append(
                    OfferedTo(
                        partner_id=pid, partner_name=partner.name, offer_no=no, expires_at=expires, remind_at=remind
                    )
                )
            result = OfferResult(pick=pick, offers=offers)
            step = {"key": inp.idempotency_key, "at": inp.at.isoformat(), "result": result.model_dump(mode="json")}
            lead.routing = [*lead.routing, step]
            await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor="system",
                action="leads.routed",
                journey=JOURNEY,
                detail={
                    "lead_id": inp.lead_id,
                    "rule": pick.rule,
                    "partners": [o.partner_id for o in offers],
                    "reasons": pick.reasons,
                },
            )
            return result

    @activity.defn(name=LeadActivity.RECORD_OFFER)
    async def record_offer(self, inp: OfferRecord) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            lead = await self._lead(session, inp.lead_id)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action=f"leads.offer_{inp.state.value}",
                partner_id=inp.partner_id,
                journey=JOURNEY,
                detail={
                    "lead_id": inp.lead_id,
                    "offer_no": inp.offer_no,
                    "reason_code": inp.reason_code,
                    "reason": inp.reason,
                },
            ):
                return StepResult(applied=False)
            await session.execute(
                update(LeadOffer)
                .where(and_(LeadOffer.lead_id == lead.id, LeadOffer.offer_no == inp.offer_no))
                .values(
                    state=inp.state.value,
                    answered_at=inp.at,
                    answered_by=inp.by,
                    reason_code=inp.reason_code,
                    reason=inp.reason,
                )
            )
        return StepResult(applied=True)

    @activity.defn(name=LeadActivity.RECORD_STATE)
    async def record_state(self, inp: LeadStateInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            lead = await self._lead(session, inp.lead_id)
            if not await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action=f"leads.{inp.state.value}",
                partner_id=inp.partner_id,
                journey=JOURNEY,
                detail={"lead_id": inp.lead_id, "deal_id": inp.deal_id, "reason": inp.reason},
            ):
                return StepResult(applied=False)
            values: dict[str, Any] = {"state": inp.state.value, "state_reason": inp.reason, "partner_id": None}
            if inp.partner_id is not None:
                values["partner_id"] = uuid.UUID(inp.partner_id)
            if inp.deal_id is not None:
                values["deal_id"] = uuid.UUID(inp.deal_id)
            await session.execute(update(Lead).where(Lead.id == lead.id).values(**values))
        return StepResult(applied=True)

    @activity.defn(name=LeadActivity.SEND_OFFER)
    async def send_offer(self, inp: SendOfferInput) -> NotifyResult:
        """Outbox rows for the partner's contacts; an offer and its reminder carry each address's own
        signed accept / decline links (valid until the offer expires)."""
        async with self.sessionmaker() as session, session.begin():
            lead = await self._lead(session, inp.lead_id)
            recipients = await resolve_recipients(session, inp.partner_id, ["partner"], self.ops_email)
            rows: list[tuple[str, str, dict]] = []
            for role, address in recipients:
                urls: dict[str, str] = {}
                if inp.template in ("offer", "offer_reminder") and inp.expires_at is not None:
                    for answer in ANSWERS:
                        claims = LeadLinkClaims(
                            lead_id=inp.lead_id,
                            decision=answer,
                            approver=actors.partner(inp.partner_id),
                            jti=link_jti(inp.idempotency_key, address, answer),
                            expires_at=inp.expires_at,
                        )
                        urls[f"{answer}_url"] = OFFER.url(self.public_base_url, self.link_secret, claims)
                rows.append((role, address, urls))
            context = {
                "lead_id": inp.lead_id,
                "company": lead.company,
                "country": lead.country,
                "region": lead.region,
                "product_category": lead.product_category,
                "source": lead.source,
                "value": f"{lead.value_minor / 100:,.2f} {lead.currency}" if lead.value_minor is not None else "",
                "expires_at": f"{inp.expires_at:%Y-%m-%d %H:%M} UTC" if inp.expires_at else "",
                "offer_no": inp.offer_no,
            }
            return await queue_rows(
                session,
                rows,
                key=inp.idempotency_key,
                partner_id=inp.partner_id,
                journey=JOURNEY,
                template=inp.template,
                context=context,
            )
