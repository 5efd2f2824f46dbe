"""What a subscriber answers is data from outside: kept screened and bounded, never verbatim. A
200 with a NUL in its body was stored as sent, PostgreSQL refused the row (a non-retryable
error) and the delivery read `failed` with 0 attempts: ops would replay an event the subscriber
already had."""

from __future__ import annotations

import pytest_asyncio

from activities.webhooks import REPLY_CHARS
from tests.helpers.api import enrol
from tests.helpers.waiting import eventually
from tests.integrations.receiver import Receiver
from tests.integrations.test_webhooks import fast_webhooks, subscribe


@pytest_asyncio.fixture
async def receiver():
    rx = await Receiver().start()
    yield rx
    await rx.stop()


async def test_a_reply_with_a_nul_is_delivered_with_its_attempt_counted(api, ops, worker, receiver, sessionmaker):
    await fast_webhooks(api, ops)
    sub = await subscribe(api, ops, receiver, "nul", ["partner.enrolled"])
    receiver.replies["nul"] = b"ok\x00 thanks\x1b[31m \xef\xbf\xbe" + b"x" * (2 * REPLY_CHARS)
    await enrol(api, ops, tier="registered", domain="replies.test")

    async def settled():
        r = await api.get(f"/webhooks/{sub['id']}/deliveries", headers=ops)
        assert r.status_code == 200, r.text
        rows = r.json()
        return rows if rows and all(d["status"] != "pending" for d in rows) else None

    rows = await eventually(settled, what="the delivery settled", timeout=30)
    assert len(receiver.accepted["nul"]) == 1
    (delivery,) = rows
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1, delivery
    kept = delivery["last_response"]
    assert kept.startswith("ok thanks[31m x") and len(kept) == REPLY_CHARS, kept[:40]
    assert not any(ch in kept for ch in "\x00\x1b\ufffe")
