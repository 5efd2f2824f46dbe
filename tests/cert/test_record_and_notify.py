"""A certification's state change and the email that tells it as one step
(`cert.record_state_and_notify`, since the kit's generation 13): the state recorded, the email
queued with its audit row and the event it tells written, all in one transaction, and the email
sent once that transaction committed; a retry records, sends and writes nothing twice; a state
that cannot be recorded queues no email (nothing half-written); the email is the one the two steps
before sent (`cert.record_state`, then `outbox.notify`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.enums import Tier
from domain.journeys import NotifyInput
from domain.webhooks import EventInput
from journeys.cert.activities import CertActivities
from journeys.cert.domain import CertState, CertStateInput, CertStateNotice
from journeys.cert.events import CertEvent
from journeys.cert.models import Certification
from tests.cert.factories import make_cert
from tests.helpers.factories import make_partner
from tests.helpers.notices import outbox, written
from tests.helpers.statements import sql_of, statements, transactions

AT = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
# The certification locked, the state's audit row with the journey's read model, its UPDATE; the
# partner's addresses and languages, the email's audit row with its outbox row, the event; after
# the commit, in a transaction of its own, the outbox row locked and marked sent.
RECORD_AND_NOTIFY = 8


def activities(sessionmaker, mailbox, *, shared: bool = True) -> CertActivities:
    return CertActivities(sessionmaker, outbox=outbox(sessionmaker, mailbox) if shared else None)


def lapse(cert_id: str, *, milestone_by: str | None = None) -> CertStateInput:
    return CertStateInput(
        idempotency_key=f"cert-{cert_id}:1:lapsed",
        cert_id=cert_id,
        state=CertState.lapsed,
        restricted=True,
        by="system",
        at=AT,
        milestone_by=milestone_by,
    )


def told(cert_id: str, partner_id: str, record: CertStateInput) -> CertStateNotice:
    """The lapse `record` and the email `lapsed` to the partner, carrying `certification.lapsed`."""
    expires = AT - timedelta(days=1)
    event = EventInput(
        idempotency_key=f"cert-{cert_id}:event:certification.lapsed",
        type="certification.lapsed",
        partner_id=partner_id,
        occurred_at=AT,
        data=CertEvent(
            certification_id=cert_id,
            partner_id=partner_id,
            category="network",
            expires_at=expires,
            state=CertState.lapsed.value,
        ).model_dump(mode="json"),
    )
    notice = NotifyInput(
        idempotency_key=f"cert-{cert_id}:notify:lapsed",
        partner_id=partner_id,
        journey="cert",
        template="lapsed",
        recipients=["partner"],
        context={
            "partner_name": "Acme",
            "person_name": "Pat Engineer",
            "track": "Network Associate",
            "product_category": "network",
            "cert_id": cert_id,
            "expires_on": expires.date().isoformat(),
        },
        audit_action="cert.lapsed_sent",
        events=[event],
    )
    return CertStateNotice(record=record, notice=notice)


async def lapsing(sessionmaker):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    cert = await make_cert(sessionmaker, partner, expires_at=AT - timedelta(days=1))
    return partner, cert


async def test_a_lapse_and_its_email_are_recorded_queued_and_sent_once(sessionmaker, mailbox, dev_env):
    partner, cert = await lapsing(sessionmaker)
    acts = activities(sessionmaker, mailbox)
    inp = told(str(cert.id), str(partner.id), lapse(str(cert.id)))

    with statements() as sent, transactions() as begun:
        result = await ActivityEnvironment(dev_env.client).run(acts.record_state_and_notify, inp)
    assert (result.sent, result.already_sent, result.failed) == (1, 0, 0), sql_of(sent)
    assert len(begun) == 2, sql_of(sent)  # the state, the email and its event: one; the send: one
    assert len(sent) == RECORD_AND_NOTIFY, sql_of(sent)
    assert result.idempotency_key == inp.notice.idempotency_key and len(result.events) == 1
    assert [m["To"] for m in mailbox.messages] == [partner.contact_email]
    async with sessionmaker() as session:
        row = await session.get(Certification, cert.id)
        assert row is not None and (row.state, row.restricted) == ("lapsed", True)
    assert await written(sessionmaker, inp) == (1, 1, 1)

    # A retry (the step ran, its answer was lost): nothing recorded, sent or published twice.
    again = await ActivityEnvironment(dev_env.client).run(acts.record_state_and_notify, inp)
    assert (again.sent, again.already_sent) == (0, 1)
    assert len(mailbox.messages) == 1
    assert await written(sessionmaker, inp) == (1, 1, 1)


async def test_a_state_that_cannot_be_recorded_queues_no_email(sessionmaker, mailbox, dev_env):
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    missing = str(uuid.uuid4())
    inp = told(missing, str(partner.id), lapse(missing))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment(dev_env.client).run(activities(sessionmaker, mailbox).record_state_and_notify, inp)
    assert err.value.type == "CertNotFound" and err.value.non_retryable
    assert mailbox.messages == []
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_without_the_outbox_the_step_refuses_and_records_nothing(sessionmaker, mailbox):
    partner, cert = await lapsing(sessionmaker)
    inp = told(str(cert.id), str(partner.id), lapse(str(cert.id)))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(sessionmaker, mailbox, shared=False).record_state_and_notify, inp)
    assert err.value.non_retryable
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_the_first_certifications_milestone_is_refused_and_nothing_recorded(sessionmaker, mailbox):
    """Telling onboarding the first certification is `cert.record_state`'s (a signal once the state
    is recorded): the one step refuses a state that carries it rather than drop the signal."""
    partner, cert = await lapsing(sessionmaker)
    inp = told(str(cert.id), str(partner.id), lapse(str(cert.id), milestone_by="system"))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(sessionmaker, mailbox).record_state_and_notify, inp)
    assert err.value.non_retryable and "cert.record_state" in str(err.value)
    assert mailbox.messages == []
    assert await written(sessionmaker, inp) == (0, 0, 0)


async def test_the_one_step_sends_the_email_the_two_steps_sent(sessionmaker, mailbox, dev_env):
    """The same email (subject, recipient, text) as `cert.record_state` then `outbox.notify`."""
    acts = activities(sessionmaker, mailbox)
    assert acts.outbox is not None
    env = ActivityEnvironment(dev_env.client)

    partner, first = await lapsing(sessionmaker)
    two = told(str(first.id), str(partner.id), lapse(str(first.id)))
    assert (await env.run(acts.record_state, two.record)).applied
    await env.run(acts.outbox.notify, two.notice)
    (two_steps,) = mailbox.messages
    mailbox.clear()
    second = await make_cert(sessionmaker, partner, expires_at=AT - timedelta(days=1))
    await env.run(acts.record_state_and_notify, told(str(second.id), str(partner.id), lapse(str(second.id))))
    (one_step,) = mailbox.messages

    def text(message) -> str:
        return message.get_body(("plain",)).get_content()

    assert one_step["Subject"] == two_steps["Subject"] and one_step["To"] == two_steps["To"]
    assert text(one_step) == text(two_steps) and "lapsed" in text(one_step)
