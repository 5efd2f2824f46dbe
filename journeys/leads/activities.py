"""Activities of the lead distribution journey: routing and writing offers (deadlines in the
partner's business hours), recording offers' outcomes and the lead's state, and the offer emails
with signed one-click accept / decline links."""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Collection
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    BindParameter,
    Executable,
    Row,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, array, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import CommonActivities, Queued, notification, resolve_recipients, shared_outbox, write_outbox
from activities.webhooks import wake_stream, write_event
from domain import actors
from domain.journeys import NotifyResult, SendResult, StepResult
from domain.links import link_jti
from domain.policy import ProgramPolicy
from domain.webhooks import PROGRAM_STREAM, EventInput
from journeys.cert import contract as certs
from journeys.leads.calendar import add_business_hours
from journeys.leads.domain import (
    JOURNEY,
    SCORES_KEPT,
    Ask,
    Candidate,
    Found,
    LeadActivity,
    LeadFacts,
    LeadState,
    LeadStateInput,
    OfferedTo,
    OfferInput,
    OfferRecord,
    OfferResult,
    OfferState,
    Pick,
    SendOfferInput,
    draw,
    performance,
    ranked,
    routing,
    weigher,
)
from journeys.leads.events import LeadRoutingEvent
from journeys.leads.links import OFFER, LeadLinkClaims
from journeys.leads.models import Lead, LeadOffer, LeadPartnerStats, LeadPreference
from journeys.leads.policy import LeadsPolicy, Picker, RoutingRule
from store import locks, repo
from store.db import table_of
from store.models import Partner

ANSWERS = ("accept", "decline")
ANSWERED = [OfferState.accepted.value, OfferState.declined.value, OfferState.expired.value]  # performance counts them
ROUTING_LOCK = "leads:routing"  # serializes the program's routings (`store.locks`)
DEFAULT_CAPACITY = 10  # open offers of a partner without lead preferences (as `Candidate.capacity`)


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


def _names(value: str) -> Any:
    """`ARRAY[value]` typed as the preference columns (varchar[]): `@>` compares like with like
    and the GIN index applies."""
    return cast(array([value]), ARRAY(String))


def _none_or_has(column: Any, value: str) -> Any:
    """The preference names nothing (any), or names `value`."""
    return or_(LeadPreference.partner_id.is_(None), func.cardinality(column) == 0, column.contains(_names(value)))


def candidate_query(lead: LeadFacts | None = None, excluded: Collection[str] = ()) -> Select:
    """The partners as routing sees them, in one query: preferences and offers summed up
    (`lead_partner_stats`). With `lead`, only the partners routing could pick for it, whatever the
    rule: serving its country (their territories, else their own country: one bitmap scan of
    partners by country or by the ids whose territories name it, both indexed), region and
    category, accepting leads, under their capacity, never offered it before (`excluded`)."""
    pref, stats = LeadPreference, LeadPartnerStats
    stmt = (
        select(
            Partner.id,
            Partner.tier,
            Partner.country,
            pref.accepting,
            pref.capacity,
            pref.countries,
            pref.regions,
            pref.categories,
            func.coalesce(stats.live, 0).label("live"),
            func.coalesce(stats.accepted, 0).label("accepted"),
            func.coalesce(stats.answered, 0).label("answered"),
            stats.last_offered_at,
            stats.last_accepted_at,
            certs.certified_categories(Partner.id).label("certified"),
        )
        .outerjoin(pref, pref.partner_id == Partner.id)
        .outerjoin(stats, stats.partner_id == Partner.id)
    )
    if lead is not None:
        country = _names(lead.country)
        territories = select(LeadPreference.partner_id).where(LeadPreference.countries.contains(country))
        no_territories = or_(pref.partner_id.is_(None), func.cardinality(pref.countries) == 0)
        stmt = stmt.where(
            or_(Partner.country == lead.country, Partner.id == any_(func.array(territories.scalar_subquery()))),
            or_(and_(no_territories, Partner.country == lead.country), pref.countries.contains(country)),
            or_(pref.partner_id.is_(None), pref.accepting.is_(True)),
            _none_or_has(pref.regions, lead.region),
            _none_or_has(pref.categories, lead.product_category),
            func.coalesce(stats.live, 0) < func.coalesce(pref.capacity, DEFAULT_CAPACITY),
        )
        if excluded:
            stmt = stmt.where(Partner.id.not_in([uuid.UUID(pid) for pid in excluded]))
    return stmt


async def candidates(
    session: AsyncSession, lead: LeadFacts | None = None, excluded: Collection[str] = ()
) -> list[Candidate]:
    """`candidate_query`'s partners as the domain's candidates (the dry run routes them in memory)."""
    conn = await session.connection()
    return [
        Candidate.model_construct(
            partner_id=str(row.id),
            tier=row.tier,
            country=row.country,
            countries=list(row.countries or []),
            regions=list(row.regions or []),
            categories=list(row.categories or []),
            accepting=True if row.accepting is None else row.accepting,
            capacity=DEFAULT_CAPACITY if row.capacity is None else row.capacity,
            open_offers=row.live,
            performance=performance(row.accepted, row.answered),
            last_offered_at=row.last_offered_at,
            last_accepted_at=row.last_accepted_at,
            certified=list(row.certified or []),
        )
        for row in (await conn.execute(candidate_query(lead, excluded))).all()
    ]


def rule_query(lead: LeadFacts, excluded: Collection[str], rule: RoutingRule, k: int) -> Select:
    """One rule's eligible partners (`candidate_query` of the rule's tiers), each row with the
    number of them: for round robin and longest idle only the longest waiting (in the picker's
    order, as `domain.pick`), for the weighted draw every one in partner id order."""
    stats = LeadPartnerStats
    stmt = candidate_query(lead, excluded).with_only_columns(
        cast(Partner.id, String).label("id"),
        Partner.tier,
        func.coalesce(stats.accepted, 0).label("accepted"),
        func.coalesce(stats.answered, 0).label("answered"),
        func.count().over().label("eligible"),
    )
    if rule.tiers:
        stmt = stmt.where(Partner.tier.in_([t.value for t in rule.tiers]))
    if rule.certified:  # the certification journey's condition (its contract)
        stmt = stmt.where(certs.certified_in(Partner.id, lead.product_category))
    if rule.picker == Picker.weighted:
        return stmt.order_by(Partner.id)
    since = stats.last_offered_at if rule.picker == Picker.round_robin else stats.last_accepted_at
    return stmt.order_by(since.asc().nulls_first(), Partner.id).limit(max(k, SCORES_KEPT))


# The lead's values as parameters, for `rule_query` built once per rule shape (`prepared_rule_query`).
_LEAD_PARAMS = typing.cast(
    LeadFacts,
    SimpleNamespace(
        country=bindparam("country", type_=String),
        region=bindparam("region", type_=String),
        product_category=bindparam("category", type_=String),
    ),
)
_PREPARED: dict[tuple[Any, ...], Select] = {}


def prepared_rule_query(rule: RoutingRule, k: int) -> Select:
    """`rule_query` built once per rule shape (its tiers, certification condition, picker and `k`),
    the lead's country, region and category and the partners already offered (`excluded`) sent as
    parameters (`rule_params`): building the statement and its cache key took about 0.9 ms of CPU
    for every lead routed."""
    key = (tuple(t.value for t in rule.tiers), rule.certified, rule.picker, k)
    stmt = _PREPARED.get(key)
    if stmt is None:
        if len(_PREPARED) >= 256:
            _PREPARED.clear()
        excluded: BindParameter[Any] = bindparam("excluded", expanding=True)
        stmt = _PREPARED[key] = rule_query(_LEAD_PARAMS, (), rule, k).where(Partner.id.not_in(excluded))
    return stmt


def rule_params(lead: LeadFacts, excluded: Collection[str]) -> dict[str, Any]:
    return {
        "country": lead.country,
        "region": lead.region,
        "category": lead.product_category,
        "excluded": [uuid.UUID(pid) for pid in excluded],
    }


async def route_in_db(
    session: AsyncSession, lead: LeadFacts, policy: LeadsPolicy, excluded: Collection[str], offer_no: int
) -> Pick:
    """`domain.routing` answered by PostgreSQL: one query per rule that applies (usually one),
    returning the few partners a round robin or longest-idle pick needs, or the id, tier and record
    of every eligible partner for a weighted draw. Picks as `domain.route` over every candidate."""
    conn = await session.connection()
    params = rule_params(lead, excluded)

    async def answer(ask: Ask) -> Found:
        rows = (await conn.execute(prepared_rule_query(ask.rule, ask.k), params)).all()
        ids = [r.id for r in rows]
        if not rows:
            return 0, [], []
        if ask.rule.picker == Picker.weighted:
            score = weigher(policy)
            scores = [score(r.tier, performance(r.accepted, r.answered)) for r in rows]
            return len(rows), *draw(ids, scores, ask.k, ask.seed)
        return rows[0].eligible, *ranked(ids, ask.k)

    steps = routing(lead, policy, offer_no)
    try:
        ask = next(steps)
        while True:
            ask = steps.send(await answer(ask))
    except StopIteration as done:
        return typing.cast(Pick, done.value)


async def refresh_stats(session: AsyncSession, partner_ids: Collection[uuid.UUID]) -> None:
    """Rewrite the partners' `lead_partner_stats` from their offers, in the caller's transaction,
    in two statements: every row written or locked first (in id order: no deadlock), then all
    summed in a statement of its own, which sees what a concurrent transaction that held one of
    the locks committed (a statement's snapshot is taken when it starts: the sums cannot be taken
    by the statement that waits for the locks)."""
    ids = sorted(set(partner_ids))
    if not ids:
        return
    stats = LeadPartnerStats
    await session.execute(
        insert(stats)
        .values([{"partner_id": pid, "live": 0, "accepted": 0, "answered": 0} for pid in ids])
        .on_conflict_do_update(index_elements=[stats.partner_id], set_={"live": stats.live})
    )
    await session.execute(_summed(), {"ids": ids})


@functools.cache
def _summed() -> Executable:
    """`refresh_stats`' sums of the partners `ids`' offers, every column in one UPDATE."""
    live, accepted = OfferState.live.value, OfferState.accepted.value
    answered = ", ".join(f"'{state}'" for state in ANSWERED)
    return text(
        f"""
        UPDATE lead_partner_stats AS s
        SET (live, accepted, answered, last_offered_at, last_accepted_at) = (
            SELECT count(*) FILTER (WHERE o.state = '{live}'),
                   count(*) FILTER (WHERE o.state = '{accepted}'),
                   count(*) FILTER (WHERE o.state IN ({answered})),
                   max(o.offered_at),
                   max(o.answered_at) FILTER (WHERE o.state = '{accepted}')
            FROM lead_offers AS o WHERE o.partner_id = s.partner_id)
        WHERE s.partner_id = ANY(:ids)
        """
    ).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))


LEAD_FIELDS = ("company", "country", "region", "product_category", "source")  # what an event repeats of the lead


def routing_event(
    event_type: str, lead: Lead | Row[Any], by: str, at: datetime, key: str | None = None, **more: Any
) -> EventInput:
    """`lead.created` / `lead.unplaced` on the program's stream (`more`: the other fields of
    `LeadRoutingEvent`), idempotent on `key` (default: the lead's creation)."""
    state = LeadState.unplaced if event_type == "lead.unplaced" else LeadState.new
    data = LeadRoutingEvent.model_validate(
        {"lead_id": str(lead.id), "state": state.value, "by": by, **{f: getattr(lead, f) for f in LEAD_FIELDS}, **more}
    )
    return EventInput(
        idempotency_key=key or f"{JOURNEY}-{lead.id}:event:{event_type}",
        type=event_type,
        partner_id=PROGRAM_STREAM,
        occurred_at=at,
        data=data.model_dump(mode="json"),
    )


@functools.cache
def _locked_lead(with_policy: bool = False) -> Select:
    """A lead's columns by id (`lead_id`), locked; `with_policy`, and the policy version its step
    pinned (`repo.with_pinned_policy`, in the same round trip)."""
    leads = table_of(Lead)
    stmt = select(*leads.c).where(leads.c.id == bindparam("lead_id")).with_for_update(of=leads)
    return repo.with_pinned_policy(stmt) if with_policy else stmt


@functools.cache
def _offered() -> Select:
    """The picked partners (`ids`) as an offer needs them: name, country, time zone (if they set one)."""
    partners, prefs = table_of(Partner), table_of(LeadPreference)
    return (
        select(partners.c.id, partners.c.name, partners.c.country, prefs.c.time_zone)
        .select_from(partners.outerjoin(prefs, prefs.c.partner_id == partners.c.id))
        .where(partners.c.id.in_(bindparam("ids", expanding=True)))
    )


# An offer's columns as the routing step writes them (`offers_and_stats`, `offer_params`).
OFFER_COLUMNS = (
    "lead_id",
    "offer_no",
    "partner_id",
    "rule",
    "reasons",
    "state",
    "offered_at",
    "expires_at",
    "remind_at",
    "step_key",
)


@functools.lru_cache(maxsize=16)
def offers_and_stats(count: int) -> Executable:
    """The routing step's `count` offers (one per partner, bound as `offer_params` names them) and
    their partners' stats in one statement, built once per count (building and compiling it took
    about 1.5 ms of CPU an offer): each partner one more live offer, offered last now (its row
    written or locked in id order). A partner's stats are otherwise rewritten from its offers
    (`refresh_stats`): one with offers always has a row (migration leads_0003 wrote them), so a
    new row counts this offer alone, and a concurrent rewrite waits for this one's row lock or is
    waited for."""
    offers, stats = table_of(LeadOffer), table_of(LeadPartnerStats)
    rows = [select(*(bindparam(f"{c}_{i}", type_=offers.c[c].type) for c in OFFER_COLUMNS)) for i in range(count)]
    source = rows[0] if count == 1 else union_all(*rows)  # not a multi-row VALUES: it has no cache key
    inserted = insert(offers).from_select(OFFER_COLUMNS, source)
    written = inserted.returning(offers.c.partner_id, offers.c.offered_at).cte("offered")
    one_more = select(written.c.partner_id, literal(1), literal(0), literal(0), written.c.offered_at).order_by(
        written.c.partner_id
    )
    upsert = insert(stats).from_select(["partner_id", "live", "accepted", "answered", "last_offered_at"], one_more)
    return upsert.on_conflict_do_update(
        index_elements=[stats.c.partner_id],
        set_={
            "live": stats.c.live + 1,
            "last_offered_at": func.greatest(stats.c.last_offered_at, upsert.excluded.last_offered_at),
        },
    ).add_cte(written)


def offer_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`offers_and_stats(len(rows))`'s bound values."""
    return {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in OFFER_COLUMNS}


@functools.cache
def _routed(offered: bool) -> Executable:
    """The lead's routing log and, `offered`, its `offered` state (without a partner, as
    `record_state` writes it), with the step's audit row (`repo.claimed()`, bound by
    `repo.claim_params`' names)."""
    leads = table_of(Lead)
    values: dict[str, Any] = {
        "routing": bindparam("routing_log", type_=leads.c.routing.type),
        # named here, kept: else the claim's `partner_id` value would be SET as a column of the same name
        "partner_id": leads.c.partner_id,
    }
    if offered:
        values |= {
            "state": bindparam("offered_state", type_=leads.c.state.type),
            "state_reason": bindparam("offered_reason", type_=leads.c.state_reason.type),
            "partner_id": null(),
        }
    routed = update(leads).where(leads.c.id == bindparam("lead_id")).values(values)
    claim = repo.claimed()
    return select(claim.c.id).add_cte(claim, routed.cte("routed"))


class LeadActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        link_secret: str,
        public_base_url: str,
        ops_email: str,
        outbox: CommonActivities | None = None,
    ):
        """`outbox`: the shared activities, which send what `notify_offer` queues."""
        self.sessionmaker = sessionmaker
        self.outbox = outbox
        self.link_secret = link_secret
        self.public_base_url = public_base_url.rstrip("/")
        self.ops_email = ops_email

    async def _lead(self, session: AsyncSession, lead_id: str, policy: repo.PinnedPolicy | None = None) -> Row[Any]:
        """The lead's columns, its row locked until the step's transaction ends (a row, not an
        entity: the steps write the lead with statements of their own); with `policy`, and that
        version's columns (`policy_created_at`, `policy_body`)."""
        params = {"lead_id": uuid.UUID(lead_id), **(policy.params if policy else {})}
        lead = (await session.execute(_locked_lead(policy is not None), params)).one_or_none()
        if lead is None:
            raise ApplicationError(f"lead {lead_id} not found", type="LeadNotFound", non_retryable=True)
        return lead

    @activity.defn(name=LeadActivity.OFFER)
    async def offer(self, inp: OfferInput) -> OfferResult:
        async with self.sessionmaker() as session, session.begin():
            pinned = repo.PinnedPolicy.of_version(inp.policy_version)
            lead = await self._lead(session, inp.lead_id, pinned)
            done = next((step for step in lead.routing if step.get("key") == inp.idempotency_key), None)
            if done is not None:  # a retry: the same answer
                return OfferResult.model_validate(done["result"])
            snap = await pinned.or_newest(session, lead)
            policy = snap.policy
            facts = LeadFacts(
                lead_id=inp.lead_id, country=lead.country, region=lead.region, product_category=lead.product_category
            )
            if inp.to_partner_id is not None:
                pick = Pick(rule=None, partners=[inp.to_partner_id], reasons=[inp.reason or "offered by ops"])
            else:  # one routing at a time: two at once read the same partner as the one waiting longest
                await locks.lock(session, ROUTING_LOCK)
                pick = await route_in_db(session, facts, policy.section(LeadsPolicy), inp.excluded, inp.offer_no)
                pick.partners = pick.partners[: inp.limit]
            offers: list[OfferedTo] = []
            rows: list[dict[str, Any]] = []
            picked = [uuid.UUID(pid) for pid in pick.partners]
            found = {r.id: r for r in (await session.execute(_offered(), {"ids": picked})).all()} if picked else {}
            for i, pid in enumerate(pick.partners):
                partner = found.get(uuid.UUID(pid))
                if partner is None:
                    pick.reasons.append(f"partner {pid} no longer exists")
                    continue
                tz = partner.time_zone or policy.section(LeadsPolicy).default_time_zone
                expires, remind = offer_window(policy, inp.at, tz, partner.country)
                no = inp.offer_no + i
                rows.append(
                    {
                        "lead_id": lead.id,
                        "offer_no": no,
                        "partner_id": partner.id,
                        "rule": pick.rule,
                        "reasons": pick.reasons,  # with every reason the pick gave, as the last row has
                        "state": OfferState.live.value,
                        "offered_at": inp.at,
                        "expires_at": expires,
                        "remind_at": remind,
                        "step_key": inp.idempotency_key,
                    }
                )
                offers.append(
                    OfferedTo(
                        partner_id=pid, partner_name=partner.name, offer_no=no, expires_at=expires, remind_at=remind
                    )
                )
            if rows:
                await session.execute(offers_and_stats(len(rows)), offer_params(rows))
            state = bool(offers) and await self._claim_offered(session, inp, pick.reasons[-1])
            result = OfferResult(pick=pick, offers=offers)
            step = {"key": inp.idempotency_key, "at": inp.at.isoformat(), "result": result.model_dump(mode="json")}
            reason = pick.reasons[-1] if pick.reasons else None
            audit = repo.claim_params(
                key=inp.idempotency_key,
                actor=actors.SYSTEM,
                action="leads.routed",
                journey=JOURNEY,
                detail={
                    "lead_id": inp.lead_id,
                    "rule": pick.rule,
                    "partners": [o.partner_id for o in offers],
                    "reasons": pick.reasons,
                },
            )
            routed = {
                "lead_id": lead.id,
                "routing_log": [*lead.routing, step],
                "offered_state": LeadState.offered.value,
                "offered_reason": reason,
            }
            await session.execute(_routed(state), routed | audit)
            return result

    @activity.defn(name=LeadActivity.OFFER_WITH_STATE)
    async def offer_with_state(self, inp: OfferInput) -> OfferResult:
        """`offer` writing the lead's `offered` state with the offers (`inp.offered_state_key`; kit
        generation 9). A name of its own: a worker that does not know it never runs the step
        without writing the state."""
        return await self.offer(inp)

    async def _claim_offered(self, session: AsyncSession, inp: OfferInput, reason: str) -> bool:
        """The audit row of `record_state`'s `offered`, in the routing step's transaction (generation
        9, `inp.offered_state_key`): True when this step claimed it (the state is then written
        with the routing log)."""
        if inp.offered_state_key is None:
            return False
        return await repo.claim_step(
            session,
            key=inp.offered_state_key,
            actor=actors.SYSTEM,
            action=f"leads.{LeadState.offered.value}",
            journey=JOURNEY,
            detail={"lead_id": inp.lead_id, "deal_id": None, "reason": reason},
        )

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
            await refresh_stats(session, [uuid.UUID(inp.partner_id)])
        return StepResult(applied=True)

    @activity.defn(name=LeadActivity.RECORD_STATE)
    async def record_state(self, inp: LeadStateInput) -> StepResult:
        """The lead's state, with its audit row; `unplaced` also publishes `lead.unplaced` (on the
        program's stream, once per time the lead became unplaced)."""
        woken: list[uuid.UUID] = []
        async with self.sessionmaker() as session, session.begin():
            lead = await self._lead(session, inp.lead_id)
            if inp.state == LeadState.unplaced:  # also on a retry: its streams are woken again
                offered = await session.scalars(
                    select(LeadOffer.partner_id).where(LeadOffer.lead_id == lead.id).order_by(LeadOffer.offer_no)
                )
                offered_ids = [str(pid) for pid in offered]
                key = f"{inp.idempotency_key}:event"
                event = routing_event(
                    "lead.unplaced", lead, inp.by, inp.at, key, reason=inp.reason, offered=offered_ids
                )
                _, woken = await write_event(session, event)
            applied = await repo.claim_step(
                session,
                key=inp.idempotency_key,
                actor=inp.by,
                action=f"leads.{inp.state.value}",
                partner_id=inp.partner_id,
                journey=JOURNEY,
                detail={"lead_id": inp.lead_id, "deal_id": inp.deal_id, "reason": inp.reason},
            )
            if applied:
                values: dict[str, Any] = {"state": inp.state.value, "state_reason": inp.reason, "partner_id": None}
                if inp.partner_id is not None:
                    values["partner_id"] = uuid.UUID(inp.partner_id)
                if inp.deal_id is not None:
                    values["deal_id"] = uuid.UUID(inp.deal_id)
                await session.execute(update(Lead).where(Lead.id == lead.id).values(**values))
        for subscription_id in woken:
            await wake_stream(activity.client(), activity.info().task_queue, subscription_id, PROGRAM_STREAM)
        return StepResult(applied=applied)

    @activity.defn(name=LeadActivity.SEND_OFFER)
    async def send_offer(self, inp: SendOfferInput) -> NotifyResult:
        """Outbox rows for the partner's contacts; an offer and its reminder carry each address's own
        signed accept / decline links (valid until the offer expires)."""
        async with self.sessionmaker() as session, session.begin():
            note, rows = await self._offer_email(session, inp)
            queued = await write_outbox(session, note, rows)
        return NotifyResult(queued=queued, recipients=[a for _, a, _ in rows])

    @activity.defn(name=LeadActivity.NOTIFY_OFFER)
    async def notify_offer(self, inp: SendOfferInput) -> SendResult:
        """`send_offer` and the send of what it queued in one step, with the events the email tells
        (`inp.events`, written in its transaction): `CommonActivities.queue_and_send` (kit
        generation 11). A name of its own: a worker that does not know it never queues the email
        without sending it or its events."""
        outbox = shared_outbox(self.outbox)

        async def queued(session: AsyncSession, languages: dict[str, str]) -> Queued:
            return await self._offer_email(session, inp, languages)

        return await outbox.queue_and_send(queued, inp.events)

    async def _offer_email(
        self, session: AsyncSession, inp: SendOfferInput, languages: dict[str, str] | None = None
    ) -> Queued:
        """The email of `inp.template` to the partner's contacts, each with its own context: an
        offer and its reminder carry the address's signed accept / decline links."""
        lead = await self._lead(session, inp.lead_id)
        recipients = await resolve_recipients(session, inp.partner_id, ["partner"], self.ops_email, languages)
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
        note = notification(
            rows,
            key=inp.idempotency_key,
            partner_id=inp.partner_id,
            journey=JOURNEY,
            template=inp.template,
            context=context,
        )
        return note, rows
