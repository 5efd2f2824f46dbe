"""The leads journey's scorecard inputs (its manifest's `scorecard_inputs`, read by the QBR
scorecard): the partner's offers answered or expired in the window, accepted (a hand-back counts),
the median time to accept and the accepted leads converted; other partners' and other windows'
offers, and live or withdrawn ones, are not counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from core.journey import ScorecardQuery
from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.leads.manifest import SPEC
from journeys.leads.models import Lead, LeadOffer
from tests.helpers.factories import make_partner
from tests.leads.factories import make_lead

START = datetime(2027, 1, 1, tzinfo=UTC)


async def test_offers_of_the_window_give_acceptance_median_time_and_conversion(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    other = await make_partner(sessionmaker, tier=Tier.gold, name="Other")
    offers = [  # (partner, state, hours to answer, answered on day, lead converted)
        (partner, "accepted", 2, 10, True),
        (partner, "accepted", 6, 11, False),
        (partner, "accepted", 30, 12, False),
        (partner, "returned", 1, 13, False),  # accepted, then handed back
        (partner, "declined", 1, 14, False),
        (partner, "expired", 16, 15, False),
        (partner, "withdrawn", 1, 16, False),  # another partner of the pool won: not the partner's answer
        (partner, "live", 1, 17, False),
        (partner, "accepted", 1, 120, True),  # after the window
        (other, "accepted", 1, 10, True),  # another partner
    ]
    for who, state, hours, day, converted in offers:
        lead = await make_lead(sessionmaker)
        answered = START + timedelta(days=day)
        async with sessionmaker() as session, session.begin():
            session.add(
                LeadOffer(
                    lead_id=lead.id,
                    offer_no=1,
                    partner_id=who.id,
                    reasons=[],
                    state=state,
                    offered_at=answered - timedelta(hours=hours),
                    expires_at=answered + timedelta(days=1),
                    answered_at=answered,
                    step_key=f"k-{lead.id}",
                )
            )
            if converted:
                await session.execute(update(Lead).where(Lead.id == lead.id).values(state="converted"))
    policy = ProgramPolicy()
    assert SPEC.scorecard_inputs is not None
    async with sessionmaker() as session:
        got = await SPEC.scorecard_inputs(
            session, ScorecardQuery(partner.id, "2027-Q1", START, START + timedelta(days=90), policy)
        )
        nothing = await SPEC.scorecard_inputs(
            session, ScorecardQuery(partner.id, "2026-Q4", START - timedelta(days=92), START, policy)
        )
    assert got == {"leads": {"offers": 6, "accepted": 4, "median_hours_to_accept": 6.0, "converted": 1}}
    assert nothing == {"leads": None}
