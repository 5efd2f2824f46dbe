"""The statements every step sends are built once and sent with their values (store/repo.py,
activities/common.py, activities/webhooks.py): the same rows as a statement built per call, and
the same guards — a key claims a step once, a step without a key is always recorded, an audit
row without a time has its transaction's, a journey's read model is upserted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from domain.enums import Tier
from store import repo
from store.models import AuditEvent, JourneyRecord
from tests.helpers.factories import make_partner
from tests.helpers.statements import sql_of, statements


async def test_a_claimed_step_is_recorded_once_and_a_keyless_one_always(sessionmaker):
    partner = uuid.uuid4()
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        now = await session.scalar(select(func.now()))
        claims = [
            await repo.claim_step(session, key="k-1", actor="system", action="a", partner_id=partner, detail={"n": 1}),
            await repo.claim_step(session, key="k-1", actor="system", action="b"),  # the same key: refused
            await repo.claim_step(session, key=None, actor="ops:x", action="c"),
            await repo.claim_step(session, key=None, actor="ops:x", action="c", at=at),  # no key: always
        ]
    assert claims == [True, False, True, True]
    async with sessionmaker() as session:
        rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
    assert [(r.idempotency_key, r.action, r.partner_id, r.detail) for r in rows] == [
        ("k-1", "a", partner, {"n": 1}),
        (None, "c", None, {}),
        (None, "c", None, {}),
    ]
    assert [r.at for r in rows] == [now, now, at]  # no time given: the transaction's, as the column default


async def test_a_journey_state_is_upserted(sessionmaker):
    partner = (await make_partner(sessionmaker, tier=Tier.gold)).id
    for state in ("started", "active"):
        async with sessionmaker() as session, session.begin():
            await repo.set_journey_state(session, partner, "cert", "c-1", state)
    async with sessionmaker() as session:
        rows = (await session.execute(select(JourneyRecord))).scalars().all()
    assert [(r.workflow_id, r.partner_id, r.journey, r.state) for r in rows] == [
        ("cert-c-1", partner, "cert", "active")
    ]


async def test_a_claimed_step_takes_its_journey_state_in_the_same_statement(sessionmaker):
    """`claim_step(..., state=...)`: the audit row and the read model's state in one statement; a
    key already claimed writes neither (a retry leaves the state a later step gave)."""
    partner = (await make_partner(sessionmaker, tier=Tier.gold)).id

    async def claim(key: str, state: str) -> bool:
        async with sessionmaker() as session, session.begin():
            return await repo.claim_step(
                session, key=key, actor="system", action=f"deal.{state}", partner_id=partner, journey="deal",
                state=("d-1", state),
            )  # fmt: skip

    with statements() as sent:
        assert await claim("k-approved", "approved") is True
    assert len(sent) == 1, sql_of(sent)
    assert await claim("k-won", "won") is True  # an existing record: its state updated
    assert await claim("k-approved", "approved") is False  # a retry of the first step: nothing
    async with sessionmaker() as session:
        records = (await session.execute(select(JourneyRecord))).scalars().all()
        actions = (await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert [(r.workflow_id, r.partner_id, r.journey, r.state) for r in records] == [
        ("deal-d-1", partner, "deal", "won")
    ]
    assert actions == ["deal.approved", "deal.won"]
