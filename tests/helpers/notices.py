"""A journey's state change and the email that tells it as one step (kit generation 12): the
shared activities those steps send through, and what each writes once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from activities.common import CommonActivities
from activities.mail import Mailer
from store.models import AuditEvent, OutboxMessage
from store.models.integrations import WebhookEvent


def outbox(sessionmaker, mailbox) -> CommonActivities:
    """The shared activities, sending to the test's SMTP server."""
    return CommonActivities(
        sessionmaker, Mailer(host=mailbox.host, port=mailbox.port, sender="n@vendor.test"), "ops@vendor.test"
    )


async def count(sessionmaker, model, key: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(model.idempotency_key == key)) or 0


async def written(sessionmaker, inp: Any) -> tuple[int, int, int]:
    """How many rows the step `inp` (its `record` and its `notice`) wrote under each key: the state's
    audit row, the email's outbox row, the event's row."""
    return (
        await count(sessionmaker, AuditEvent, inp.record.idempotency_key),
        await count(sessionmaker, OutboxMessage, inp.notice.idempotency_key),
        await count(sessionmaker, WebhookEvent, inp.notice.events[0].idempotency_key),
    )
