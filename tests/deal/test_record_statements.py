"""What recording a deal's state sends to PostgreSQL (the pins of issue 23): a decision, an
extension or an expiry is one autocommitted statement (the claim, the read model and the deal's
UPDATE; the decision's columns set only by the first decision); a win sets the closing stage and
the state in one UPDATE of the deal, and a fund the win opens is accrued without a lock or a read
of its balances (nobody else sees it before the commit). A retry writes nothing twice; an unknown
deal writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from core.settings import Settings
from domain.enums import Tier
from journeys.deal.activities import DealActivities
from journeys.deal.domain import DealStage, DealStageInput, DealState, DealStateInput
from journeys.deal.models import Deal
from journeys.mdf.models import MdfEntry
from store.models import AuditEvent, JourneyRecord
from tests.deal.factories import make_deal
from tests.helpers.factories import make_partner
from tests.helpers.statements import autocommit_modes, sql_of, statements

# The deal locked with its partner, the stage's audit row, the state's audit row with the
# journey's read model, the deal's UPDATE, the current policy (for the accrual), the period's
# lock, its fund looked up, then opened (the fund, its journey record and its allocation in one
# statement), the accrual.
WIN_OPENING_A_FUND = 9
STATE_CHANGE = 1  # the claim, the read model's state and the deal's UPDATE


def activities(sessionmaker) -> DealActivities:
    return DealActivities(sessionmaker, link_secret="s" * 32, public_base_url="http://x.test", ops_email="ops@x.test")


def win(deal: Deal, at: datetime) -> DealStateInput:
    """The deal closed won by its partner: the state and the closing stage in one step."""
    by = f"partner:{deal.partner_id}"
    stage = DealStageInput(
        idempotency_key=f"deal-{deal.id}:stage:1", deal_id=str(deal.id), stage=DealStage.closed_won, by=by, at=at
    )
    return DealStateInput(
        idempotency_key=f"deal-{deal.id}:closed",
        deal_id=str(deal.id),
        state=DealState.won,
        by=by,
        at=at,
        stage_change=stage,
    )


async def audits(sessionmaker, key: str) -> list[AuditEvent]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.idempotency_key == key))).all())


async def test_a_decision_is_one_autocommitted_statement_and_only_the_first_decision_sets_its_columns(
    sessionmaker,
):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner)
    acts = activities(sessionmaker)
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    approved = DealStateInput(
        idempotency_key=f"deal-{deal.id}:decision",
        deal_id=str(deal.id),
        state=DealState.approved,
        by="cam:first",
        reason="in policy",
        protected_until=at + timedelta(days=90),
        at=at,
    )
    with autocommit_modes() as autocommitted, statements() as sent:
        assert (await ActivityEnvironment().run(acts.record_state, approved)).applied
    assert len(sent) == STATE_CHANGE, sql_of(sent)
    assert autocommitted == [True]

    async def row() -> Deal:
        async with sessionmaker() as session:
            found = await session.get(Deal, deal.id)
            assert found is not None
            return found

    got = await row()
    first = ("cam:first", at, "in policy")
    assert (got.state, (got.decided_by, got.decided_at, got.decision_reason)) == ("approved", first)
    assert got.protected_until == at + timedelta(days=90)
    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, f"deal-{deal.id}")
        assert record is not None and (record.state, record.partner_id) == ("approved", partner.id)
    [audit] = await audits(sessionmaker, approved.idempotency_key)
    assert (audit.partner_id, audit.action, audit.actor, audit.journey) == (
        partner.id,
        "deal.approved",
        "cam:first",
        "deal",
    )
    assert audit.detail == {
        "deal_id": str(deal.id),
        "reason": "in policy",
        "protected_until": approved.protected_until.isoformat(),  # type: ignore[union-attr]
    }

    # A retry: not applied, nothing written twice.
    assert not (await ActivityEnvironment().run(acts.record_state, approved)).applied
    assert len(await audits(sessionmaker, approved.idempotency_key)) == 1

    # A later decision changes the state, not who decided first, when or why.
    later = approved.model_copy(
        update={
            "idempotency_key": f"deal-{deal.id}:decision:2",
            "state": DealState.rejected,
            "by": "ops:second",
            "reason": "second thoughts",
            "protected_until": None,
            "at": at + timedelta(hours=1),
        }
    )
    assert (await ActivityEnvironment().run(acts.record_state, later)).applied
    got = await row()
    assert (got.state, (got.decided_by, got.decided_at, got.decision_reason)) == ("rejected", first)

    # An extension: its protection and count, the decision kept.
    extended = approved.model_copy(
        update={
            "idempotency_key": f"deal-{deal.id}:extension:1",
            "by": "cam:first",
            "protected_until": at + timedelta(days=120),
            "extensions_used": 1,
        }
    )
    assert (await ActivityEnvironment().run(acts.record_state, extended)).applied
    got = await row()
    assert (got.state, got.protected_until, got.extensions_used) == ("approved", at + timedelta(days=120), 1)
    assert (got.decided_by, got.decided_at, got.decision_reason) == first


async def test_a_state_change_of_an_unknown_deal_fails_for_good_and_writes_nothing(sessionmaker):
    missing = uuid.uuid4()
    step = DealStateInput(
        idempotency_key=f"deal-{missing}:decision",
        deal_id=str(missing),
        state=DealState.approved,
        by="ops:a",
        at=datetime.now(UTC),
    )
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(sessionmaker).record_state, step)
    assert err.value.type == "DealNotFound" and err.value.non_retryable
    assert await audits(sessionmaker, step.idempotency_key) == []
    async with sessionmaker() as session:
        assert await session.get(JourneyRecord, f"deal-{missing}") is None


async def test_a_win_sets_stage_and_state_in_one_update_and_accrues_to_the_fund_it_opens(
    sessionmaker, base_settings: Settings
):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, state="approved")
    acts = DealActivities(sessionmaker, link_secret="s" * 32, public_base_url="http://x.test", ops_email="ops@x.test")
    won = win(deal, datetime.now(UTC))
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
