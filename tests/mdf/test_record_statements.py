"""What an MDF request's steps send to PostgreSQL (the pins of issue 23): a state change is one
autocommitted statement (the claim, the read model and the request's UPDATE, the partner taken
from the request's row), a reservation and a payment read the request's fund in two columns and
its holdings in one read. A retry writes nothing twice; an unknown request writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.enums import Tier
from journeys.mdf import ledger
from journeys.mdf.activities import MdfActivities
from journeys.mdf.domain import MdfState, MdfStateInput, Payment, PaymentInput, ReserveInput
from journeys.mdf.models import MdfEntry, MdfRequest
from store.models import AuditEvent, JourneyRecord
from tests.helpers.factories import make_partner
from tests.helpers.statements import autocommit_modes, sql_of, statements
from tests.mdf.factories import make_request

STATE_CHANGE = 1  # the claim, the read model's state and the request's UPDATE
RESERVE = 4  # the request's fund, the fund's lock, the holdings, the entry
PAYMENT = 4  # the request's fund, the fund's lock, the entry, the paid total with its audit row


def activities(sessionmaker) -> MdfActivities:
    return MdfActivities(sessionmaker, link_secret="s" * 32, public_base_url="http://x.test", ops_email="ops@x.test")


async def audits(sessionmaker, key: str) -> list[AuditEvent]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.idempotency_key == key))).all())


async def test_a_state_change_is_one_autocommitted_statement_and_a_retry_writes_nothing(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    req = await make_request(sessionmaker, partner)
    acts = activities(sessionmaker)
    key = f"mdf-{req.id}:running"
    step = MdfStateInput(
        idempotency_key=key, request_id=str(req.id), state=MdfState.running, by="ops:a", at=datetime.now(UTC)
    )
    with autocommit_modes() as autocommitted, statements() as sent:
        assert (await ActivityEnvironment().run(acts.record_state, step)).applied
    assert len(sent) == STATE_CHANGE, sql_of(sent)
    assert autocommitted == [True]
    async with sessionmaker() as session:
        row = await session.get(MdfRequest, req.id)
        assert row is not None and row.state == "running"
        record = await session.get(JourneyRecord, f"mdf-{req.id}")
        assert record is not None and (record.state, record.partner_id) == ("running", partner.id)
    [audit] = await audits(sessionmaker, key)
    assert (audit.partner_id, audit.action, audit.journey) == (partner.id, "mdf.running", "mdf")
    assert audit.detail["state"] == "running" and audit.detail["request_id"] == str(req.id)

    # Another state since, then a retry of the first: not applied, the state not set back.
    later = step.model_copy(update={"idempotency_key": f"mdf-{req.id}:claim_review", "state": MdfState.claim_review})
    assert (await ActivityEnvironment().run(acts.record_state, later)).applied
    assert not (await ActivityEnvironment().run(acts.record_state, step)).applied
    assert len(await audits(sessionmaker, key)) == 1
    async with sessionmaker() as session:
        assert (await session.get(MdfRequest, req.id)).state == "claim_review"  # type: ignore[union-attr]
        assert (await session.get(JourneyRecord, f"mdf-{req.id}")).state == "claim_review"  # type: ignore[union-attr]


async def test_a_state_change_of_an_unknown_request_fails_for_good_and_writes_nothing(sessionmaker):
    acts = activities(sessionmaker)
    missing = uuid.uuid4()
    key = f"mdf-{missing}:running"
    step = MdfStateInput(
        idempotency_key=key, request_id=str(missing), state=MdfState.running, by="ops:a", at=datetime.now(UTC)
    )
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.record_state, step)
    assert err.value.type == "MdfRequestNotFound" and err.value.non_retryable
    assert await audits(sessionmaker, key) == []
    async with sessionmaker() as session:
        assert await session.get(JourneyRecord, f"mdf-{missing}") is None


async def test_an_approved_claim_writes_its_memo_entry_in_the_state_changes_transaction(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    req = await make_request(sessionmaker, partner)
    acts = activities(sessionmaker)
    step = MdfStateInput(
        idempotency_key=f"mdf-{req.id}:claim_approved",
        request_id=str(req.id),
        state=MdfState.claim_approved,
        by="ops:a",
        approved_claim_minor=120_000,
        memo_claim_minor=120_000,
        at=datetime.now(UTC),
    )
    assert (await ActivityEnvironment().run(acts.record_state, step)).applied
    assert not (await ActivityEnvironment().run(acts.record_state, step)).applied
    async with sessionmaker() as session:
        claims = (
            await session.scalars(
                select(MdfEntry.amount_minor).where(MdfEntry.request_id == req.id, MdfEntry.kind == "claim")
            )
        ).all()
        assert claims == [120_000]
        row = await session.get(MdfRequest, req.id)
        assert row is not None and (row.state, row.approved_claim_minor) == ("claim_approved", 120_000)


async def test_a_reservation_reads_the_fund_and_its_holdings_once_and_refuses_what_the_fund_lacks(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    req = await make_request(sessionmaker, partner, amount_minor=300_000)
    acts = activities(sessionmaker)
    async with sessionmaker() as session:
        before = await ledger.fund_balances(session, req.fund_id)
    lower = ReserveInput(
        idempotency_key=f"mdf-{req.id}:reserve:1", request_id=str(req.id), target_minor=200_000, by="a"
    )
    with statements() as sent:
        got = await ActivityEnvironment().run(acts.reserve, lower)
    assert len(sent) == RESERVE, sql_of(sent)
    assert (got.ok, got.reserved_minor, got.available_minor) == (True, 200_000, before.available + 100_000)
    again = await ActivityEnvironment().run(acts.reserve, lower)  # a retry: the same holdings, no entry twice
    assert (again.ok, again.reserved_minor, again.available_minor) == (True, 200_000, before.available + 100_000)

    too_much = ReserveInput(
        idempotency_key=f"mdf-{req.id}:reserve:2",
        request_id=str(req.id),
        target_minor=200_000 + before.available + 100_000 + 1,  # one unit more than the fund has
        by="a",
    )
    refused = await ActivityEnvironment().run(acts.reserve, too_much)
    assert (refused.ok, refused.reserved_minor) == (False, 200_000)
    at_the_bar = too_much.model_copy(update={"target_minor": too_much.target_minor - 1})
    taken = await ActivityEnvironment().run(acts.reserve, at_the_bar)
    assert (taken.ok, taken.reserved_minor, taken.available_minor) == (True, at_the_bar.target_minor, 0)
    async with sessionmaker() as session:
        assert await ledger.held_for(session, req.id) == at_the_bar.target_minor


async def test_a_payment_is_four_statements_and_a_retry_pays_nothing_twice(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    req = await make_request(sessionmaker, partner, amount_minor=300_000)
    acts = activities(sessionmaker)
    key = f"mdf-{req.id}:payment:1"
    pay = PaymentInput(
        idempotency_key=key,
        request_id=str(req.id),
        payment=Payment(reference="P1", amount_minor=100_000, paid_on=date(2026, 12, 1), by="ops:a"),
    )
    with statements() as sent:
        assert (await ActivityEnvironment().run(acts.record_payment, pay)).applied
    assert len(sent) == PAYMENT, sql_of(sent)
    assert not (await ActivityEnvironment().run(acts.record_payment, pay)).applied
    second = pay.model_copy(
        update={
            "idempotency_key": f"mdf-{req.id}:payment:2",
            "payment": pay.payment.model_copy(update={"reference": "P2"}),
        }
    )
    assert (await ActivityEnvironment().run(acts.record_payment, second)).applied
    async with sessionmaker() as session:
        row = await session.get(MdfRequest, req.id)
        assert row is not None and row.paid_minor == 200_000
        count = (
            select(func.count()).select_from(MdfEntry).where(MdfEntry.request_id == req.id, MdfEntry.kind == "payment")
        )
        assert await session.scalar(count) == 2
    [audit] = await audits(sessionmaker, f"{key}:audit")
    assert (audit.partner_id, audit.action) == (partner.id, "mdf.payment_recorded")
    assert audit.detail == {"request_id": str(req.id), "reference": "P1", "amount_minor": 100_000}
