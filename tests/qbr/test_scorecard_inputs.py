"""The QBR scorecard reads each journey's figures through its manifest (`scorecard_inputs`):
every reader answers fields of `ScorecardInputs`, no field comes from two journeys, and together
with QBR's own they give every field (a journey dropped from a manifest fails here)."""

from __future__ import annotations

from datetime import UTC, datetime

from core import registry
from core.journey import ScorecardQuery
from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.qbr.domain import ScorecardInputs, period_bounds
from tests.helpers.factories import make_partner
from tests.qbr.factories import make_cert, make_deal

QBR_OWN = {
    "currency",
    "window_start",
    "window_end",
    "target_minor",
    "target_source",
    "certifications_required",
    "overdue_actions",
}


async def test_every_journey_gives_its_own_scorecard_fields(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    at = datetime(2027, 2, 1, tzinfo=UTC)
    await make_deal(sessionmaker, partner, amount_minor=5_000_00, state="won", at=at)
    await make_cert(sessionmaker, partner, at=at)
    policy = ProgramPolicy()
    start, end = period_bounds("2027-Q1", policy.qbr.time_zone)
    query = ScorecardQuery(partner_id=partner.id, period="2027-Q1", start=start, end=end, policy=policy)
    given: dict[str, list[str]] = {}
    figures: dict = {}
    async with sessionmaker() as session:
        for spec in registry.JOURNEYS:
            if spec.scorecard_inputs is None:
                continue
            answer = await spec.scorecard_inputs(session, query)
            for name in answer:
                given.setdefault(name, []).append(spec.name)
            figures |= answer
    assert set(given) <= set(ScorecardInputs.model_fields), set(given) - set(ScorecardInputs.model_fields)
    assert {name: by for name, by in given.items() if len(by) > 1} == {}
    assert set(given) | QBR_OWN == set(ScorecardInputs.model_fields)
    assert (figures["revenue_minor"], figures["revenue_deals"], figures["won"]) == (5_000_00, 1, 1)
    assert (figures["certifications_current"], figures["mdf"], figures["onboarding_state"]) == (1, None, "onboarding")
    assert figures["leads"] is None  # no lead offer in the period: the lead metric is not listed
