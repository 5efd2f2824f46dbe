"""The SQL one email costs (issue 26: the simulator's year, and issue 23: journeys that cost what
their steps cost). `outbox.notify` queues and sends in one activity; pinned per email on the real
engine and SMTP sink, so a statement added to the mail step fails here. A retry of the same
notification sends nothing twice."""

from __future__ import annotations

from activities.common import CommonActivities
from activities.mail import Mailer
from domain.journeys import NotifyInput
from tests.helpers.api import create_cam, enrol
from tests.helpers.statements import sql_of, statements, transactions

# One notification to one recipient: the partner read (its address, its CAM's and its contact's
# language), the audit row and the outbox row in one statement (the row returned: it is sent as
# written, unseen by anyone else until the commit), the row marked sent with its attempt.
NOTIFY_ONE = 3  # was 8, then 6, then 4: the audit row claims the key in the outbox row's statement
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
    assert sum(s.startswith("UPDATE outbox") for s in sent) == 1, sql_of(sent)

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
