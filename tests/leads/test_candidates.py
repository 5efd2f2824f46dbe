"""Routing in PostgreSQL (`route_in_db`: one query per rule) picks what the domain's `route` picks
over every partner in memory: the candidate query keeps exactly the partners the domain's filters
keep, the pickers' order is the domain's, the offers' sums are the offers'."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from domain.enums import Tier
from journeys.cert.models import Certification
from journeys.leads.activities import candidates, refresh_stats, route_in_db
from journeys.leads.domain import LeadFacts, OfferState, eligible, performance, route
from journeys.leads.models import LeadOffer, LeadPreference
from journeys.leads.policy import LeadsPolicy, OfferMode, Picker, RoutingRule
from store.models import Partner
from tests.cert.factories import make_cert
from tests.leads.factories import make_lead

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ANY = RoutingRule(name="any", mode=OfferMode.pool, pool_size=20)


async def test_the_sql_filter_is_the_domains_and_routes_the_same(sessionmaker):
    # partners of a country no other test uses, each failing (or passing) one filter
    prefs: dict[str, dict | None] = {
        "plain": None,
        "own-country": {"countries": []},
        "territory": {"countries": ["AT", "IS"]},
        "elsewhere": {"countries": ["AT"]},
        "region": {"regions": ["north"]},
        "other-region": {"regions": ["south"]},
        "category": {"categories": ["network", "cloud"]},
        "other-category": {"categories": ["cloud"]},
        "closed": {"accepting": False},
        "full": {"capacity": 1},
        "room": {"capacity": 2},
        "declined-before": None,
    }
    ids: dict[str, str] = {}
    partners: dict[str, Partner] = {}
    lead = await make_lead(sessionmaker, country="IS")
    async with sessionmaker() as session, session.begin():
        session.add(Partner(**_partner("abroad", "FR")))
        for n, (name, pref) in enumerate(prefs.items()):
            row = _partner(name, "FR" if name == "territory" else "IS")
            ids[name] = str(row["id"])
            partners[name] = Partner(**row)
            session.add(partners[name])
            await session.flush()
            if pref is not None:
                session.add(LeadPreference(partner_id=row["id"], **{"accepting": True, "capacity": 10, **pref}))
            if name in ("full", "room"):  # one live offer each
                session.add(_offer(lead.id, n, row["id"], OfferState.live))
        await session.flush()
        session.add(_offer(lead.id, 99, uuid.UUID(ids["room"]), OfferState.accepted, answered=T0))
        session.add(_offer(lead.id, 98, uuid.UUID(ids["plain"]), OfferState.declined, answered=T0))
        await session.flush()
        await refresh_stats(session, [uuid.UUID(pid) for pid in ids.values()])
    # current certifications (the certification journey's): in the lead's category, in another one,
    # and a lapsed (restricted) one that does not count
    for name, category, restricted in (
        ("plain", "network", False),
        ("territory", "cloud", False),
        ("region", "network", True),
    ):
        cert = await make_cert(sessionmaker, partners[name], expires_at=T0 + timedelta(days=30), category=category)
        if restricted:
            async with sessionmaker() as session, session.begin():
                await session.execute(update(Certification).where(Certification.id == cert.id).values(restricted=True))
    facts = LeadFacts(lead_id=str(lead.id), country="IS", region="north", product_category="network")
    excluded = {ids["declined-before"]}
    async with sessionmaker() as session:
        everyone = await candidates(session)
        kept = await candidates(session, facts, excluded)
    expected = {c.partner_id for c in eligible(ANY, facts, everyone, excluded)}
    assert {c.partner_id for c in kept} == expected
    assert expected == {ids[n] for n in ("plain", "own-country", "territory", "region", "category", "room")}
    room = next(c for c in kept if c.partner_id == ids["room"])
    assert (room.open_offers, room.performance, room.last_accepted_at) == (1, 2 * 2 / 3, T0)
    plain = next(c for c in kept if c.partner_id == ids["plain"])
    assert (plain.open_offers, plain.performance, plain.last_offered_at) == (0, 2 / 3, T0 - timedelta(days=98))
    certified = eligible(RoutingRule(name="c", certified=True), facts, everyone, excluded)
    assert [c.partner_id for c in certified] == [ids["plain"]]
    nobody = RoutingRule(name="nobody", tiers=[Tier.platinum], required=True)
    async with sessionmaker() as session:
        for picker in Picker:
            for mode in OfferMode:
                for rules in (
                    [RoutingRule(name="french", countries=["FR"]), RoutingRule(name="r", picker=picker, mode=mode)],
                    [RoutingRule(name="platinum", tiers=[Tier.platinum]), _rule(picker, mode, Tier.gold)],
                    [nobody, _rule(picker, mode, Tier.silver)],
                    [RoutingRule(name="certified", certified=True, required=True), _rule(picker, mode, Tier.gold)],
                ):
                    policy = LeadsPolicy(rules=rules)
                    expected_pick = route(facts, everyone, policy, excluded, 2)
                    assert await route_in_db(session, facts, policy, excluded, 2) == expected_pick
                    assert expected_pick.placed == (rules[0] is not nobody)
                    assert rules[0].name != "certified" or expected_pick.partners == [ids["plain"]]
    # Each rule's statement is built once and sent with the lead's values: another lead (another
    # region and category, nobody excluded) routes as the domain routes it, not as the first did.
    other = LeadFacts(lead_id=str(uuid.uuid4()), country="IS", region="south", product_category="cloud")
    others = {c.partner_id for c in eligible(ANY, other, everyone, set())}
    assert ids["other-category"] in others and ids["declined-before"] in others and others != expected
    async with sessionmaker() as session:
        assert {c.partner_id for c in await candidates(session, other)} == others
        for picker in Picker:
            for rules in (
                [RoutingRule(name="r", picker=picker)],
                [RoutingRule(name="c", certified=True, picker=picker)],
            ):
                policy = LeadsPolicy(rules=rules)
                assert await route_in_db(session, other, policy, set(), 2) == route(other, everyone, policy, set(), 2)


@pytest.mark.unit
def test_performance_is_the_acceptance_record():
    """1 without history, towards 2 for a partner accepting all, towards 0 for one accepting none."""
    assert [performance(a, n) for a, n in ((0, 0), (1, 1), (8, 8), (0, 8))] == [1.0, 4 / 3, 1.8, 0.2]


def _rule(picker: Picker, mode: OfferMode, tier: Tier) -> RoutingRule:
    return RoutingRule(name="r", picker=picker, mode=mode, tiers=[tier], pool_size=3)


def _partner(name: str, country: str) -> dict:
    slug = uuid.uuid4().hex[:8]
    return {
        "id": uuid.uuid4(),
        "name": name,
        "domain": f"{slug}.routing.test",
        "country": country,
        "type": "reseller",
        "tier": Tier.gold.value if len(name) % 2 else Tier.silver.value,
        "contact_email": f"{slug}@routing.test",
        "status": "active",
    }


def _offer(lead_id, no: int, partner_id, state: OfferState, answered: datetime | None = None) -> LeadOffer:
    return LeadOffer(
        lead_id=lead_id,
        offer_no=no,
        partner_id=partner_id,
        reasons=[],
        state=state.value,
        offered_at=T0 - timedelta(days=no),
        expires_at=T0 + timedelta(days=1),
        answered_at=answered,
        step_key=f"test-{uuid.uuid4()}",
    )
