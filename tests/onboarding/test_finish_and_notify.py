"""The onboarding's outcome and the email that tells it as one step
(`onboarding.finish_and_notify`, kit generation 12): the partner's status and the outcome's audit
row, the email queued with its audit row and the event it tells, all in one transaction, and the
email sent once it committed (the partner's row is not locked through an SMTP conversation); a
retry records, sends and writes nothing twice; an outcome that cannot be recorded queues no email
(nothing half-written); the email is the one the two steps before sent (`onboarding.finish`,
then `outbox.notify`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.enums import Tier
from domain.journeys import NotifyInput
from domain.webhooks import EventInput
from journeys.onboarding.activities import OnboardingActivities
from journeys.onboarding.domain import FinishOnboardingInput, FinishOnboardingNotice, OnboardingState
from journeys.onboarding.events import PartnerEvent
from store.models import Partner
from tests.helpers.factories import make_partner
from tests.helpers.notices import outbox, written
from tests.helpers.statements import sql_of, statements, transactions

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
# The outcome's audit row with the journey's read model, the partner's status, the partner's
# addresses and languages, the email's audit row with its outbox row, the event; after the commit,
# in a transaction of its own, the outbox row locked and marked sent.
FINISH_AND_NOTIFY = 7


def activities(sessionmaker, mailbox, *, shared: bool = True) -> OnboardingActivities:
    common = outbox(sessionmaker, mailbox)
    return OnboardingActivities(sessionmaker, outbox=common if shared else None)


def told(partner_id: str, state: OnboardingState = OnboardingState.activated) -> FinishOnboardingNotice:
    wid = f"onboarding-{partner_id}"
    event = EventInput(
        idempotency_key=f"{wid}:event:partner.{state.value}",
        type=f"partner.{state.value}",
        partner_id=partner_id,
        occurred_at=AT,
        data=PartnerEvent(
            partner_id=partner_id, partner_name="Acme", tier="registered", cam_id=None, state=state.value
        ).model_dump(mode="json"),
    )
    notice = NotifyInput(
        idempotency_key=f"{wid}:notify:{state.value}",
        partner_id=partner_id,
        journey="onboarding",
        template=state.value,
        recipients=["partner"],
        context={"partner_name": "Acme", "tier": "registered", "missing": []},
        audit_action=f"onboarding.{state.value}_sent",
        events=[event],
    )
    record = FinishOnboardingInput(idempotency_key=f"{wid}:{state.value}", partner_id=partner_id, state=state, at=AT)
    return FinishOnboardingNotice(record=record, notice=notice)


async def test_an_outcome_and_its_email_are_recorded_queued_and_sent_once(sessionmaker, mailbox, dev_env):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    acts = activities(sessionmaker, mailbox)
    inp = told(str(partner.id))

    with statements() as sent, transactions() as begun:
        result = await ActivityEnvironment(dev_env.client).run(acts.finish_and_notify, inp)
    assert (result.sent, result.already_sent, result.failed) == (1, 0, 0), sql_of(sent)
    assert len(begun) == 2, sql_of(sent)  # the outcome, the email and its event: one; the send: one
    assert len(sent) == FINISH_AND_NOTIFY, sql_of(sent)
    assert result.idempotency_key == inp.notice.idempotency_key and len(result.events) == 1
    assert [m["To"] for m in mailbox.messages] == [partner.contact_email]
    async with sessionmaker() as session:
        assert (await session.get(Partner, partner.id)).status == "active"
    assert await written(sessionmaker, inp) == (1, 1, 1)

    # A retry (the step ran, its answer was lost): nothing recorded, sent or published twice.
    again = await ActivityEnvironment(dev_env.client).run(acts.finish_and_notify, inp)
    assert (again.sent, again.already_sent) == (0, 1)
    assert len(mailbox.messages) == 1
    assert await written(sessionmaker, inp) == (1, 1, 1)


async def test_an_outcome_that_cannot_be_recorded_queues_no_email(sessionmaker, mailbox, dev_env):
    """An unknown partner: its audit row cannot be written (the partner's key), so neither is the email."""
    inp = told(str(uuid.uuid4()))
    with pytest.raises(IntegrityError):  # the audit row's partner does not exist
        await ActivityEnvironment(dev_env.client).run(activities(sessionmaker, mailbox).finish_and_notify, inp)
    assert mailbox.messages == []
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_without_the_outbox_the_step_refuses_and_records_nothing(sessionmaker, mailbox):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    inp = told(str(partner.id))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(sessionmaker, mailbox, shared=False).finish_and_notify, inp)
    assert err.value.non_retryable
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_the_one_step_sends_the_email_the_two_steps_sent(sessionmaker, mailbox, dev_env):
    """The same email (subject, recipient, text) as `onboarding.finish` then `outbox.notify`."""
    acts = activities(sessionmaker, mailbox)
    assert acts.outbox is not None
    env = ActivityEnvironment(dev_env.client)

    first = await make_partner(sessionmaker, tier=Tier.registered)
    two = told(str(first.id))
    assert (await env.run(acts.finish, two.record)).applied
    await env.run(acts.outbox.notify, two.notice)
    (two_steps,) = mailbox.messages
    mailbox.clear()
    second = await make_partner(sessionmaker, tier=Tier.registered)
    await env.run(acts.finish_and_notify, told(str(second.id)))
    (one_step,) = mailbox.messages

    def text(message) -> list[str]:
        return message.get_body(("plain",)).get_content().splitlines()

    assert one_step["Subject"] == two_steps["Subject"]
    assert (one_step["To"], two_steps["To"]) == (second.contact_email, first.contact_email)
    assert text(one_step) == text(two_steps)
