"""What recording a deal's win sends to PostgreSQL (the pins of issue 23): the closing stage and
the state in one UPDATE of the deal, and a fund the win opens accrued without a lock or a read of
its balances (nobody else sees it before the commit). A retry writes nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment

from core.settings import Settings
from domain.enums import Tier
from journeys.deal.activities import DealActivities
from journeys.deal.domain import DealStage, DealStageInput, DealState, DealStateInput
from journeys.deal.models import Deal
from journeys.mdf.models import MdfEntry
from tests.deal.factories import make_deal
from tests.helpers.factories import make_partner
from tests.helpers.statements import sql_of, statements

# The deal locked, the stage's audit row, the state's audit row with the journey's read model,
# the partner and the current policy (for the accrual), the period's lock, its fund looked up,
# then opened (the fund, its allocation, its journey record), the accrual, the deal's UPDATE.
WIN_OPENING_A_FUND = 12


async def test_a_win_sets_stage_and_state_in_one_update_and_accrues_to_the_fund_it_opens(
    sessionmaker, base_settings: Settings
):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, state="approved")
    acts = DealActivities(sessionmaker, link_secret="s" * 32, public_base_url="http://x.test", ops_email="ops@x.test")
    at = datetime.now(UTC)
    won = DealStateInput(
        idempotency_key=f"deal-{deal.id}:closed",
        deal_id=str(deal.id),
        state=DealState.won,
        by=f"partner:{partner.id}",
        at=at,
        stage_change=DealStageInput(
            idempotency_key=f"deal-{deal.id}:stage:1",
            deal_id=str(deal.id),
            stage=DealStage.closed_won,
            by=f"partner:{partner.id}",
            at=at,
        ),
    )
    with statements() as sent:
        assert (await ActivityEnvironment().run(acts.record_state, won)).applied
    assert len(sent) == WIN_OPENING_A_FUND, sql_of(sent)
    assert sum(s.startswith("UPDATE deals") for s in sent) == 1, sql_of(sent)
    assert sum("pg_advisory_xact_lock" in s for s in sent) == 1, sql_of(sent)  # the period's, not the fund's
    async with sessionmaker() as session:
        row = await session.get(Deal, deal.id)
        assert row is not None and (row.stage, row.state) == ("closed_won", "won")
        kinds = (await session.scalars(select(MdfEntry.kind).where(MdfEntry.partner_id == partner.id))).all()
        assert sorted(kinds) == ["accrual", "allocation"]

    # A retry: no claim, no UPDATE, no accrual twice.
    assert not (await ActivityEnvironment().run(acts.record_state, won)).applied
    async with sessionmaker() as session:
        count = select(func.count()).select_from(MdfEntry).where(MdfEntry.partner_id == partner.id)
        assert await session.scalar(count) == 2
