"""API calls the journeys' tests share, API keys, and mail reading."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator

from sqlalchemy import func, select

from store.apikeys import create_api_key
from store.models import AuditEvent, OutboxMessage


async def new_key(sessionmaker, role, cam_id=None, partner_id=None, approver_level=None) -> dict[str, str]:
    """Headers of a new API key for `role`."""
    async with sessionmaker() as session, session.begin():
        _, secret = await create_api_key(
            session,
            role=role,
            cam_id=cam_id,
            partner_id=partner_id,
            grants={} if approver_level is None else {"mdf.approver_level": approver_level},
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


def approve_link(mailbox, template: str, to: str | None = None) -> str | None:
    """The path of the approve link in the latest `template` email (to `to`, when given)."""
    sent = [m for m in mailbox.messages if m["X-CAMLights-Template"] == template and to in (None, m["To"])]
    if not sent:
        return None
    text = sent[-1].get_body(("plain",)).get_content()
    return re.search(r"Approve:\s+(\S+)", text).group(1).replace("http://camlights.test", "")


@contextlib.asynccontextmanager
async def api_through(settings, dev_env, interceptor) -> AsyncIterator:
    """The real app (lifespan included) whose Temporal client goes through `interceptor` (faults a
    test injects into starts or signals), behind an httpx client."""
    import httpx
    from temporalio.client import Client

    from api.app import create_app
    from tests.helpers.keys import CONVERTER

    app = create_app(settings, reconcile_every=None)
    async with app.router.lifespan_context(app):
        app.state.temporal = Client(
            dev_env.client.service_client,
            namespace=dev_env.client.namespace,
            data_converter=CONVERTER,
            interceptors=[interceptor],
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://camlights.test") as c:
            yield c


async def follows_cam(client, wid: str, cam_id: str) -> bool:
    """Whether the journey `wid` carries `cam_id` in its search attributes (it followed a coverage change)."""
    from domain.journeys import SA_CAM_ID

    return (await client.get_workflow_handle(wid).describe()).typed_search_attributes.get(SA_CAM_ID) == cam_id
