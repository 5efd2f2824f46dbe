"""A deal's state change and the email that tells it as one step (`deal.record_state_and_notify`,
kit generation 12): the state recorded, the email queued with its audit row and the event it
tells written, all in one transaction, and the email sent once that transaction committed (no
lock of the deal or of the partner's fund is held through an SMTP conversation); a retry records,
sends and writes nothing twice; a state that cannot be recorded queues no email (nothing
half-written); the email is the one the two steps before sent (`deal.record_state`, then
`outbox.notify`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.enums import Tier
from domain.journeys import NotifyInput
from domain.webhooks import EventInput
from journeys.deal.activities import DealActivities
from journeys.deal.domain import DealState, DealStateInput, DealStateNotice
from journeys.deal.events import DealEvent
from journeys.deal.models import Deal
from journeys.mdf import ledger
from journeys.mdf.models import MdfEntry
from tests.deal.factories import make_deal
from tests.deal.test_record_statements import STATE_CHANGE, WIN_OPENING_A_FUND, win
from tests.helpers.factories import make_partner
from tests.helpers.notices import outbox, written
from tests.helpers.statements import sql_of, statements, transactions
from tests.helpers.waiting import eventually

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
# Besides the state's own statements: the partner's addresses and languages, the audit row with
# the outbox row, the event; after the commit, in a transaction of its own, the outbox row locked
# and marked sent.
EMAIL_AND_EVENT = 5


def activities(sessionmaker, mailbox, *, shared: bool = True) -> DealActivities:
    common = outbox(sessionmaker, mailbox)
    return DealActivities(
        sessionmaker,
        link_secret="s" * 32,
        public_base_url="http://x.test",
        ops_email="ops@vendor.test",
        outbox=common if shared else None,
    )


def told(deal_id: str, partner_id: str, state: DealState, record: DealStateInput) -> DealStateNotice:
    """The state change `record` and the email `<state>` to the partner, carrying `deal.<state>`."""
    event = EventInput(
        idempotency_key=f"deal-{deal_id}:event:deal.{state.value}",
        type=f"deal.{state.value}",
        partner_id=partner_id,
        occurred_at=AT,
        data=DealEvent(
            deal_id=deal_id,
            partner_id=partner_id,
            state=state.value,
            stage="qualified",
            customer_name="Globex",
            product_category="storage",
            amount_minor=100_000,
            currency="USD",
            by=record.by,
            reason=record.reason,
            protected_until=record.protected_until,
        ).model_dump(mode="json"),
    )
    notice = NotifyInput(
        idempotency_key=f"deal-{deal_id}:notify:{state.value}",
        partner_id=partner_id,
        journey="deal",
        template=state.value,
        recipients=["partner"],
        context={
            "partner_name": "Acme",
            "deal_id": deal_id,
            "customer_name": "Globex",
            "product_category": "storage",
            "amount": "1,000.00 USD",
            "state": state.value,
            "stage": "qualified",
            "conflict_with": None,
            "hold_reason": None,
            "protected_until": (AT + timedelta(days=90)).date().isoformat(),
        },
        audit_action=f"deal.{state.value}_sent",
        events=[event],
    )
    return DealStateNotice(record=record, notice=notice)


def decision(deal_id: str) -> DealStateInput:
    return DealStateInput(
        idempotency_key=f"deal-{deal_id}:decision",
        deal_id=deal_id,
        state=DealState.approved,
        by="system",
        reason="inside the policy",
        protected_until=AT + timedelta(days=90),
        at=AT,
    )


async def test_a_decision_and_its_email_are_recorded_queued_and_sent_once(sessionmaker, mailbox, dev_env):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner)
    acts = activities(sessionmaker, mailbox)
    inp = told(str(deal.id), str(partner.id), DealState.approved, decision(str(deal.id)))

    with statements() as sent, transactions() as begun:
        result = await ActivityEnvironment(dev_env.client).run(acts.record_state_and_notify, inp)
    assert (result.sent, result.already_sent, result.failed) == (1, 0, 0), sql_of(sent)
    assert len(begun) == 2, sql_of(sent)  # the state, the email and its event: one; the send: one
    assert len(sent) == STATE_CHANGE + EMAIL_AND_EVENT, sql_of(sent)
    assert result.idempotency_key == inp.notice.idempotency_key and len(result.events) == 1
    assert [m["To"] for m in mailbox.messages] == [partner.contact_email]
    async with sessionmaker() as session:
        row = await session.get(Deal, deal.id)
        assert row is not None and (row.state, row.decided_by) == ("approved", "system")
    assert await written(sessionmaker, inp) == (1, 1, 1)

    # A retry (the step ran, its answer was lost): nothing recorded, sent or published twice.
    again = await ActivityEnvironment(dev_env.client).run(acts.record_state_and_notify, inp)
    assert (again.sent, again.already_sent) == (0, 1)
    assert len(mailbox.messages) == 1
    assert await written(sessionmaker, inp) == (1, 1, 1)


async def test_a_win_and_its_email_are_one_transaction_with_the_fund_it_opens(sessionmaker, mailbox, dev_env):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, state="approved")
    won = win(deal, AT)
    inp = told(str(deal.id), str(partner.id), DealState.won, won)
    with statements() as sent, transactions() as begun:
        result = await ActivityEnvironment(dev_env.client).run(
            activities(sessionmaker, mailbox).record_state_and_notify, inp
        )
    assert result.sent == 1 and len(begun) == 2, sql_of(sent)
    assert len(sent) == WIN_OPENING_A_FUND + EMAIL_AND_EVENT, sql_of(sent)
    async with sessionmaker() as session:
        row = await session.get(Deal, deal.id)
        assert row is not None and (row.stage, row.state) == ("closed_won", "won")
        kinds = (await session.scalars(select(MdfEntry.kind).where(MdfEntry.partner_id == partner.id))).all()
        assert sorted(kinds) == ["accrual", "allocation"]
    assert [m["Subject"] is not None and m["To"] for m in mailbox.messages] == [partner.contact_email]


async def test_a_win_is_committed_and_unlocked_before_its_email_is_sent(sessionmaker, mailbox, dev_env):
    """While the SMTP server has not answered the win's email, the win is visible and neither the
    deal's row nor the partner's fund is locked: another writer of either does not wait on the
    relay (it would, for as long as the send's timeout, were the email sent in the state's
    transaction). The email is sent once the server answers."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner, state="approved")
    inp = told(str(deal.id), str(partner.id), DealState.won, win(deal, AT))
    acts = activities(sessionmaker, mailbox)
    mailbox.hold()
    step = asyncio.create_task(ActivityEnvironment(dev_env.client).run(acts.record_state_and_notify, inp))
    try:
        await eventually(lambda: mailbox.held == 1 or step.done(), what="the email's DATA held by the server")
        assert not step.done()
        async with sessionmaker() as session, session.begin():
            await session.execute(text("set local lock_timeout = '500ms'"))
            row = (await session.execute(select(Deal).where(Deal.id == deal.id).with_for_update(nowait=True))).scalar()
            assert row is not None and row.state == "won"  # committed before the send
            fund = await session.scalar(select(MdfEntry.fund_id).where(MdfEntry.partner_id == partner.id).limit(1))
            await ledger.lock_fund(session, fund)  # would wait out lock_timeout and raise if held
    finally:
        mailbox.release()
    result = await step
    assert (result.sent, result.failed) == (1, 0)
    assert [m["To"] for m in mailbox.messages] == [partner.contact_email]
    assert await written(sessionmaker, inp) == (1, 1, 1)


async def test_a_state_that_cannot_be_recorded_queues_no_email(sessionmaker, mailbox, dev_env):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    missing = str(uuid.uuid4())
    inp = told(missing, str(partner.id), DealState.approved, decision(missing))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment(dev_env.client).run(activities(sessionmaker, mailbox).record_state_and_notify, inp)
    assert err.value.type == "DealNotFound" and err.value.non_retryable
    assert mailbox.messages == []
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_without_the_outbox_the_step_refuses_and_records_nothing(sessionmaker, mailbox):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    deal = await make_deal(sessionmaker, partner)
    inp = told(str(deal.id), str(partner.id), DealState.approved, decision(str(deal.id)))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(sessionmaker, mailbox, shared=False).record_state_and_notify, inp)
    assert err.value.non_retryable
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_the_one_step_sends_the_email_the_two_steps_sent(sessionmaker, mailbox, dev_env):
    """The same email (subject, recipient, text) as `deal.record_state` then `outbox.notify`."""
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    acts = activities(sessionmaker, mailbox)
    assert acts.outbox is not None
    env = ActivityEnvironment(dev_env.client)

    first = await make_deal(sessionmaker, partner)
    two = told(str(first.id), str(partner.id), DealState.approved, decision(str(first.id)))
    assert (await env.run(acts.record_state, two.record)).applied
    await env.run(acts.outbox.notify, two.notice)
    (two_steps,) = mailbox.messages
    mailbox.clear()
    second = await make_deal(sessionmaker, partner)
    await env.run(
        acts.record_state_and_notify,
        told(str(second.id), str(partner.id), DealState.approved, decision(str(second.id))),
    )
    (one_step,) = mailbox.messages

    def text(message) -> list[str]:  # its lines but those naming the deal (its id differs)
        return [line for line in message.get_body(("plain",)).get_content().splitlines() if "deal-" not in line]

    assert one_step["Subject"] == two_steps["Subject"] and one_step["To"] == two_steps["To"]
    assert text(one_step) == text(two_steps)
