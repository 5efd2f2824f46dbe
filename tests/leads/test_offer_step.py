"""The routing step (`leads.offer`) called directly: an offer's window is counted in the offered
partner's own time zone (else the policy's default) and by the policy version the journey pinned
(read with the lead), a partner that no longer exists is named in the reasons and offered
nothing, and one offer is written in a fixed number of statements."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.leads.activities import LeadActivities, offer_window
from journeys.leads.domain import OfferInput
from journeys.leads.models import LeadPreference
from journeys.leads.policy import LeadsPolicy
from store import repo
from tests.helpers.factories import make_partner
from tests.helpers.statements import sql_of, statements
from tests.leads.factories import make_lead, save_policy

AT = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # a Monday: business hours have begun in Tokyo, not in Berlin
OFFER_STATEMENTS = 4  # lead (locked) with its policy, partners, offers with stats, routing log with audit (was 10)


def activities(settings, sessionmaker) -> LeadActivities:
    return LeadActivities(
        sessionmaker, link_secret=settings.link_secret, public_base_url="http://test", ops_email="ops@test"
    )


def offered_to(lead, partner_id, key: str) -> OfferInput:
    return OfferInput(
        idempotency_key=key,
        lead_id=str(lead.id),
        offer_no=1,
        excluded=[],
        to_partner_id=str(partner_id),
        policy_version=1,
        reason="offered by ops",
        at=AT,
    )


async def test_an_offer_counts_its_window_in_the_partners_time_zone_else_the_default(base_settings, sessionmaker):
    acts = activities(base_settings, sessionmaker)
    tokyo = await make_partner(sessionmaker, tier=Tier.registered, name="Tokyo Partner")
    berlin = await make_partner(sessionmaker, tier=Tier.registered, name="Berlin Partner")
    async with sessionmaker() as session, session.begin():
        session.add(LeadPreference(partner_id=tokyo.id, accepting=True, capacity=10, time_zone="Asia/Tokyo"))
        policy = (await repo.current_policy(session)).policy
    default = policy.section(LeadsPolicy).default_time_zone

    got = {}
    for partner in (tokyo, berlin):
        lead = await make_lead(sessionmaker)
        with statements() as sent:
            result = await acts.offer(offered_to(lead, partner.id, f"t:{uuid.uuid4()}"))
        (offer,) = result.offers
        assert offer.partner_name == partner.name
        got[partner.name] = (offer.expires_at, offer.remind_at)
        assert len(sent) == OFFER_STATEMENTS, sql_of(sent)
    assert got["Tokyo Partner"] == offer_window(policy, AT, "Asia/Tokyo", "DE")
    assert got["Berlin Partner"] == offer_window(policy, AT, default, "DE")
    assert got["Tokyo Partner"] != got["Berlin Partner"]  # the zone made a difference


async def test_a_partner_that_no_longer_exists_is_named_and_offered_nothing(base_settings, sessionmaker):
    lead = await make_lead(sessionmaker)
    gone = uuid.uuid4()
    result = await activities(base_settings, sessionmaker).offer(offered_to(lead, gone, f"t:{uuid.uuid4()}"))
    assert result.offers == []
    assert f"partner {gone} no longer exists" in result.pick.reasons


async def test_since_generation_9_the_offered_state_is_written_with_the_offer_once(base_settings, sessionmaker):
    """The routing step given the `offered` state's key writes the state and its audit row in its
    own transaction; a retry answers the same and writes nothing twice; without offers, no state."""
    from sqlalchemy import func, select

    from journeys.leads.models import Lead
    from store.models import AuditEvent

    acts = activities(base_settings, sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    lead = await make_lead(sessionmaker)
    step = offered_to(lead, partner.id, f"t:{uuid.uuid4()}").model_copy(update={"offered_state_key": f"t:{lead.id}:s"})
    first = await acts.offer(step)
    assert await acts.offer(step) == first  # a retry
    async with sessionmaker() as session:
        row = await session.get(Lead, lead.id)
        audits = await session.scalar(
            select(func.count()).where(
                AuditEvent.action == "leads.offered", AuditEvent.idempotency_key == f"t:{lead.id}:s"
            )
        )
    assert (row.state, row.state_reason, audits) == ("offered", "offered by ops", 1)

    nobody = await make_lead(sessionmaker)
    gone = offered_to(nobody, uuid.uuid4(), f"t:{uuid.uuid4()}").model_copy(update={"offered_state_key": "t:none:s"})
    assert (await acts.offer(gone)).offers == []
    async with sessionmaker() as session:
        assert (await session.get(Lead, nobody.id)).state == "new"


async def test_an_offers_stats_are_what_a_rewrite_from_the_partners_offers_gives(base_settings, sessionmaker):
    """The routing step counts its offer into the partner's stats in the statement that writes it
    (one more live offer, offered last now); a rewrite from the partner's offers (`refresh_stats`,
    which the answers' records run) finds the same, for a partner with no row yet and for one whose
    offers were answered before."""
    from sqlalchemy import select

    from journeys.leads.activities import refresh_stats
    from journeys.leads.domain import OfferRecord, OfferState
    from journeys.leads.models import LeadPartnerStats

    acts = activities(base_settings, sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.registered)

    async def stats() -> tuple:
        async with sessionmaker() as session:
            row = await session.get(LeadPartnerStats, partner.id, populate_existing=True)
            assert row is not None
            return (row.live, row.accepted, row.answered, row.last_offered_at, row.last_accepted_at)

    async def rewritten() -> tuple:
        async with sessionmaker() as session, session.begin():
            await refresh_stats(session, [partner.id])
        return await stats()

    async with sessionmaker() as session:  # no row yet
        assert await session.scalar(select(LeadPartnerStats).where(LeadPartnerStats.partner_id == partner.id)) is None
    seen = []
    for n, (at, answer) in enumerate(
        [(AT, OfferState.accepted), (AT.replace(hour=9), OfferState.declined), (AT, None)]
    ):
        lead = await make_lead(sessionmaker)
        await acts.offer(offered_to(lead, partner.id, f"t:{uuid.uuid4()}").model_copy(update={"at": at}))
        counted = await stats()
        assert counted == await rewritten(), n
        seen.append(counted)
        if answer is not None:
            record = OfferRecord(
                idempotency_key=f"t:{lead.id}:{answer.value}",
                lead_id=str(lead.id),
                partner_id=str(partner.id),
                offer_no=1,
                state=answer,
                by=f"partner:{partner.id}",
                at=at,
            )
            await acts.record_offer(record)
    # each time one live offer (the one before answered); an offer made earlier than the last one
    # leaves offered-last at 09:00
    assert [s[0] for s in seen] == [1, 1, 1]
    assert seen[-1][1:4] == (1, 2, AT.replace(hour=9))


async def test_the_window_is_counted_by_the_pinned_version_read_with_the_lead_else_the_newest(
    base_settings, sessionmaker
):
    """The version the journey pinned comes in the lead's own locked read: an offer's window is
    counted by it while a newer version exists; a version that is not stored is the newest."""
    acts = activities(base_settings, sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    pinned_policy, newest_policy = (ProgramPolicy(leads=LeadsPolicy(offer_hours=h, reminder_hours=1)) for h in (3, 30))
    pinned = await save_policy(sessionmaker, pinned_policy)
    newest = await save_policy(sessionmaker, newest_policy)
    default = LeadsPolicy().default_time_zone
    for version, policy in ((pinned, pinned_policy), (newest + 1, newest_policy), (pinned, pinned_policy)):
        lead = await make_lead(sessionmaker)
        inp = offered_to(lead, partner.id, f"t:{uuid.uuid4()}").model_copy(update={"policy_version": version})
        with statements() as sent:
            (offer,) = (await acts.offer(inp)).offers
        assert (offer.expires_at, offer.remind_at) == offer_window(policy, AT, default, "DE")
        if version == pinned:  # a version that is not stored costs the read of the newest
            assert len(sent) == OFFER_STATEMENTS, sql_of(sent)
    assert offer_window(pinned_policy, AT, default, "DE") != offer_window(newest_policy, AT, default, "DE")
