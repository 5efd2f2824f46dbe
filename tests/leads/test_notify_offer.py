"""The lead's offer email as one step (`leads.notify_offer`, kit generation 11): queued with each
address's own signed accept / decline links, sent, and the `lead.offered` event it tells written,
all in the transaction that queues it; a retry sends and writes nothing twice; the email is the
one the two steps before sent (`leads.send_offer`, then `outbox.send`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment

from activities.common import CommonActivities
from activities.mail import Mailer
from domain.webhooks import EventInput
from journeys.leads.activities import LeadActivities
from journeys.leads.domain import SendOfferInput
from journeys.leads.events import LeadEvent
from store.models import OutboxMessage
from store.models.integrations import WebhookEvent
from tests.helpers.api import enrol
from tests.helpers.statements import sql_of, statements, transactions
from tests.leads.factories import make_lead
from tests.leads.test_api import offer_links

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# The lead (locked), the partner's addresses and languages, the audit row with the outbox row, the
# event: the first email is sent as its row is written (no lock, no read, no UPDATE of its own).
NOTIFY_OFFER = 4


def activities(settings, sessionmaker, mailbox) -> LeadActivities:
    outbox = CommonActivities(
        sessionmaker, Mailer(host=mailbox.host, port=mailbox.port, sender="n@vendor.test"), "ops@vendor.test"
    )
    return LeadActivities(
        sessionmaker,
        link_secret=settings.link_secret,
        public_base_url=settings.public_base_url,
        ops_email="ops@vendor.test",
        outbox=outbox,
    )


def offer_email(lead, partner_id: str, key: str, events: list[EventInput]) -> SendOfferInput:
    return SendOfferInput(
        idempotency_key=key,
        lead_id=str(lead.id),
        partner_id=partner_id,
        offer_no=1,
        template="offer",
        expires_at=AT + timedelta(days=2),
        events=events,
    )


def offered(lead, partner_id: str, key: str) -> EventInput:
    data = LeadEvent(
        lead_id=str(lead.id),
        partner_id=partner_id,
        state="offered",
        company=lead.company,
        country=lead.country,
        product_category=lead.product_category,
        source=lead.source,
        offer_no=1,
        by="system",
    )
    return EventInput(
        idempotency_key=key,
        type="lead.offered",
        partner_id=partner_id,
        occurred_at=AT,
        data=data.model_dump(mode="json"),
    )


async def count(sessionmaker, model, key: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(model.idempotency_key == key)) or 0


async def test_an_offer_email_is_queued_sent_and_its_event_written_once(
    api, ops, base_settings, sessionmaker, mailbox, dev_env
):
    partner = await enrol(api, ops, tier="registered", domain="offer-once.test")
    lead = await make_lead(sessionmaker)
    acts = activities(base_settings, sessionmaker, mailbox)
    key, event_key = f"leads-{lead.id}:notify:offer:1", f"leads-{lead.id}:event:lead.offered:1"
    inp = offer_email(lead, partner["id"], key, [offered(lead, partner["id"], event_key)])
    mailbox.clear()

    with statements() as sent, transactions() as begun:
        result = await ActivityEnvironment(dev_env.client).run(acts.notify_offer, inp)
    assert (result.sent, result.already_sent, result.failed) == (1, 0, 0), sql_of(sent)
    assert len(begun) == 1, sql_of(sent)  # queued, sent and the event written in one transaction
    assert len(sent) == NOTIFY_OFFER, sql_of(sent)
    assert len(result.events) == 1
    links = offer_links(mailbox, partner["contact_email"])
    assert links["accept"] != links["decline"]
    assert all(link.startswith("/") for link in links.values())  # signed links to this API
    assert await count(sessionmaker, WebhookEvent, event_key) == 1

    # A retry (the step ran, its answer was lost): nothing queued, sent or published twice.
    again = await ActivityEnvironment(dev_env.client).run(acts.notify_offer, inp)
    assert (again.sent, again.already_sent) == (0, 1)
    assert len(mailbox.messages) == 1
    assert await count(sessionmaker, OutboxMessage, key) == 1
    assert await count(sessionmaker, WebhookEvent, event_key) == 1


async def test_the_one_step_sends_the_email_the_two_steps_sent(api, ops, base_settings, sessionmaker, mailbox):
    """The same email, subject and text (but for its own links), as `leads.send_offer` then
    `outbox.send` sent it."""
    from domain.journeys import SendInput

    partner = await enrol(api, ops, tier="registered", domain="offer-same.test")
    lead = await make_lead(sessionmaker)
    acts = activities(base_settings, sessionmaker, mailbox)
    assert acts.outbox is not None
    mailbox.clear()

    before = f"leads-{lead.id}:notify:offer:before-{uuid.uuid4().hex[:6]}"
    await acts.send_offer(offer_email(lead, partner["id"], before, []))
    await acts.outbox.send_notifications(SendInput(idempotency_key=before))
    (two_steps,) = mailbox.messages
    mailbox.clear()
    await acts.notify_offer(offer_email(lead, partner["id"], f"leads-{lead.id}:notify:offer:1", []))
    (one_step,) = mailbox.messages

    def text(message) -> list[str]:  # its lines but the two that carry the links
        body = message.get_body(("plain",)).get_content()
        return [line for line in body.splitlines() if "http" not in line]

    assert one_step["Subject"] == two_steps["Subject"]
    assert one_step["To"] == two_steps["To"] == partner["contact_email"]
    assert text(one_step) == text(two_steps)
