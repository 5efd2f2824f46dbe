"""The SQL one email costs (issue 26: the simulator's year, and issue 23: journeys that cost what
their steps cost). `outbox.notify` queues and sends in one activity; pinned per email on the real
engine and SMTP sink, so a statement added to the mail step fails here. A retry of the same
notification sends nothing twice; the first row, written as sent, takes its real outcome when
its send fails."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from activities.common import CommonActivities
from activities.mail import Mailer
from domain.journeys import NotifyInput
from store.models import OutboxMessage
from tests.helpers.api import create_cam, enrol
from tests.helpers.statements import sql_of, statements, transactions

# One notification to one recipient: the partner read (its address, its CAM's and its contact's
# language), and the audit row with the outbox row in one statement (the row returned: it is sent
# as written, unseen by anyone else until the commit; written as sent, so the commit marks it).
NOTIFY_ONE = 2  # was 8, then 6, 4, 3: the row is written as sent, no UPDATE unless the send fails
NOTIFY_EACH_MORE = 3  # another recipient: its row, its lock, its UPDATE (a CAM's address comes with the partner's)
# Transactions: the first email is sent in the one that queues it (nobody sees its row before it is
# marked); each further email has its own (its row committed sent before the next is tried).
NOTIFY_ONE_TX = 1  # was 2


def notice(partner_id: str, recipients: list[str]) -> NotifyInput:
    return NotifyInput(
        idempotency_key=f"counted-{'-'.join(recipients)}",
        partner_id=partner_id,
        journey="onboarding",
        template="needs_attention",
        recipients=recipients,
        context={"journey": "onboarding", "workflow_id": "onboarding-counted", "activity": "counted", "error": "none"},
        audit_action="onboarding.needs_attention",
    )


async def test_statements_per_email(api, ops, sessionmaker, mailbox):
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="counted.test")
    mail = CommonActivities(
        sessionmaker, Mailer(host=mailbox.host, port=mailbox.port, sender="n@vendor.test"), "ops@vendor.test"
    )
    mailbox.clear()

    with statements() as sent, transactions() as begun:
        result = await mail.notify(notice(partner["id"], ["partner"]))
    assert (result.sent, result.already_sent) == (1, 0), (result, sql_of(sent))
    assert len(begun) == NOTIFY_ONE_TX, sql_of(sent)
    assert len(sent) == NOTIFY_ONE, f"one email sent {len(sent)} statements:\n{sql_of(sent)}"
    assert not any(s.startswith("UPDATE outbox") for s in sent), sql_of(sent)

    with statements() as sent, transactions() as begun:
        result = await mail.notify(notice(partner["id"], ["partner", "cam"]))
    assert (result.sent, result.already_sent) == (2, 0)
    assert len(begun) == NOTIFY_ONE_TX + 1, sql_of(sent)
    # the CAM's email needs no language (CAMs read English): one statement fewer than a partner's
    assert len(sent) == NOTIFY_ONE + NOTIFY_EACH_MORE, f"two emails sent {len(sent)}:\n{sql_of(sent)}"

    # A retry (the activity ran, its answer was lost): nothing queued or sent twice; the rows of
    # the key are looked up, each found sent.
    again = await mail.notify(notice(partner["id"], ["partner", "cam"]))
    assert (again.sent, again.already_sent) == (0, 2)
    assert len(mailbox.messages) == 3


async def rows_of(sessionmaker, key: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))).all())


async def test_a_first_row_whose_send_fails_is_not_left_marked_sent(api, ops, sessionmaker, mailbox):
    """The first row is written as sent (its commit marks it): a deferred send (451) leaves it
    pending with its attempt and error and no time, one UPDATE; the retry sends it once and marks
    it then. A refused one (550) is failed for good, with no time either."""
    partner = await enrol(api, ops, tier="registered", domain="deferred-first.test")
    mail = CommonActivities(
        sessionmaker, Mailer(host=mailbox.host, port=mailbox.port, sender="n@vendor.test"), "ops@vendor.test"
    )
    contact = partner["contact_email"]
    deferred = notice(partner["id"], ["partner"])
    mailbox.defer(contact)
    with statements() as sent, pytest.raises(ApplicationError, match="451"):
        await mail.notify(deferred)
    assert sum(s.startswith("UPDATE outbox") for s in sent) == 1, sql_of(sent)
    [row] = await rows_of(sessionmaker, deferred.idempotency_key)
    assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None) and "451" in (row.last_error or "")
    assert mailbox.messages == []

    mailbox.accept()
    again = await mail.notify(deferred)  # Temporal's retry of the activity
    assert (again.sent, again.already_sent) == (1, 0)
    [row] = await rows_of(sessionmaker, deferred.idempotency_key)
    assert (row.status, row.attempts) == ("sent", 2) and row.sent_at is not None
    assert len(mailbox.messages) == 1

    refused = notice(partner["id"], ["partner"])
    refused.idempotency_key += "-refused"
    mailbox.refuse(contact)
    result = await mail.notify(refused)
    assert (result.sent, result.failed) == (0, 1)
    [row] = await rows_of(sessionmaker, refused.idempotency_key)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 1, None) and "550" in (row.last_error or "")
    assert len(mailbox.messages) == 1
