"""API calls the journeys' tests share, API keys, and mail reading."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from store.apikeys import create_api_key
from store.models import AuditEvent, OutboxMessage


async def new_key(sessionmaker, role, cam_id=None, partner_id=None, approver_level=None) -> dict[str, str]:
    """Headers of a new API key for `role`."""
    async with sessionmaker() as session, session.begin():
        _, secret = await create_api_key(
            session, role=role, cam_id=cam_id, partner_id=partner_id, approver_level=approver_level
        )
    return {"Authorization": f"Bearer {secret}"}


async def enrol(api, ops, *, tier: str, cam_id=None, domain: str, name="Acme Networks", **extra):
    body = {
        "name": name,
        "domain": domain,
        "country": "de",
        "type": "reseller",
        "tier": tier,
        "cam_id": str(cam_id) if cam_id else None,
        "contact_email": f"owner@{domain}",
        **extra,
    }
    r = await api.post("/partners", json=body, headers=ops)
    assert r.status_code == 201, r.text
    return r.json()


async def create_cam(api, ops, email="casey@vendor.test", name="Casey"):
    r = await api.post("/cams", json={"name": name, "email": email}, headers=ops)
    assert r.status_code == 201, r.text
    return r.json()


def templates(mailbox, to: str | None = None) -> list[str]:
    return [m["X-CAMLights-Template"] for m in mailbox.messages if to is None or m["To"] == to]


def deal_body(**over):
    return {
        "customer_name": "Globex Corporation",
        "customer_domain": "globex.com",
        "product_category": "network",
        "amount": "25000.00",
        "currency": "USD",
        "expected_close_date": "2027-03-31",
        **over,
    }


async def nothing_twice(sessionmaker, mailbox) -> Counter[str]:
    """No email sent twice (one per Message-ID, one outbox row each), no step recorded twice (one audit
    row per idempotency key); the audit actions counted."""
    ids = Counter(m["Message-ID"] for m in mailbox.messages)
    assert all(n == 1 for n in ids.values()), ids
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == len(mailbox.messages)
        keys = (
            await session.scalars(select(AuditEvent.idempotency_key).where(AuditEvent.idempotency_key.is_not(None)))
        ).all()
        actions = Counter((await session.scalars(select(AuditEvent.action))).all())
    assert len(keys) == len(set(keys))
    return actions
