"""Outbound webhooks and CRM events in, end to end on the dev server: journeys publish catalog
events, a receiver on loopback verifies signatures, fails the first deliveries and then accepts;
every event arrives once in effect, in order per partner; a CRM closed-won ends the deal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import func, select, text
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.webhooks import WebhookActivities
from domain.enums import Role
from domain.webhooks import EventInput, delivery_workflow_id
from store.models.integrations import CrmEvent, WebhookEvent, WebhookSubscription
from tests.helpers.api import deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from tests.integrations.receiver import Receiver
from tests.integrations.test_replay import record_stream


async def fast_webhooks(api, ops, **webhooks):
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["deal"].update({"stall_days": 60})
    # retried for 14.4 s: a loaded machine still gets three attempts in, a subscriber down is given up soon
    policy["webhooks"] = {"first_retry_seconds": 1, "max_retry_seconds": 2, "retry_hours": 0.004, **webhooks}
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text


@pytest_asyncio.fixture
async def receiver():
    rx = await Receiver().start()
    yield rx
    await rx.stop()


async def subscribe(api, ops, receiver, path, types, **extra):
    body = {"url": receiver.url(path), "event_types": types, "allow_private_network": True, **extra}
    r = await api.post("/webhooks", json=body, headers=ops)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["secret"].startswith("whsec_")
    receiver.secrets[path] = sub["secret"]
    return sub


async def test_subscriptions_refuse_loopback_and_unknown_types_and_write_nothing(api, ops, receiver, sessionmaker):
    r = await api.post("/webhooks", json={"url": receiver.url("x"), "event_types": ["deal.won"]}, headers=ops)
    assert r.status_code == 422 and "127.0.0.1 is a loopback address" in r.json()["detail"], r.text
    for url in ("http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[::1]/x", "ftp://example.com/x"):
        r = await api.post("/webhooks", json={"url": url, "event_types": ["*"]}, headers=ops)
        assert r.status_code == 422, (url, r.text)
    r = await api.post(
        "/webhooks",
        json={"url": receiver.url("x"), "event_types": ["deal.bogus"], "allow_private_network": True},
        headers=ops,
    )
    assert r.status_code == 422 and "unknown event type(s) deal.bogus" in r.text
    assert (await api.get("/webhooks", headers=ops)).json() == []
    r = await api.get("/events/catalog", headers=ops)
    assert {"deal.won", "partner.enrolled", "certification.lapsed"} <= {e["type"] for e in r.json()}

    # The secret is shown once: sealed with the key ring in the database, absent from a retry's answer.
    body = {"url": receiver.url("x"), "event_types": ["*"], "allow_private_network": True}
    r = await api.post("/webhooks", json=body, headers={**ops, "Idempotency-Key": "sub-1"})
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_"), r.text
    shown = r.json()["secret"]
    again = await api.post("/webhooks", json=body, headers={**ops, "Idempotency-Key": "sub-1"})
    assert again.json()["id"] == r.json()["id"] and "whsec_" not in again.text
    async with sessionmaker() as session:
        stored = (await session.scalars(select(WebhookSubscription.secret))).all()
        assert len(stored) == 1 and stored[0].startswith("sealed:") and shown not in stored[0]
        assert "whsec_" not in str((await session.execute(text("select * from idempotency_records"))).all())


async def test_events_arrive_once_in_order_per_partner_and_crm_closes_the_deal(
    api, ops, worker, receiver, sessionmaker, dev_env
):
    await fast_webhooks(api, ops)
    main = await subscribe(api, ops, receiver, "main", ["*"])
    deals_only = await subscribe(api, ops, receiver, "deals", ["deal.approved", "deal.won"])
    receiver.fail_first["main"] = 2  # the first two requests fail: retried with backoff
    receiver.down.add("deals")  # down for longer than the policy's retry_hours: failed, then replayed

    partner = await enrol(api, ops, tier="registered", domain="hooks.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    r = await api.post("/deals", json=deal_body(amount="2500.00"), headers=partner_h)
    assert r.status_code == 201, r.text
    deal = r.json()
    await eventually(lambda: _state(api, ops, deal["id"], "approved"), what="auto approval", timeout=30)

    # The CRM moves the opportunity (keyed by the deal's id and its own id the first time), then
    # closes it, keyed by its own id alone.
    opportunity = "006Dn000004XyZ"
    moved = {
        "event_id": "crm-evt-1",
        "type": "opportunity.stage_changed",
        "deal_id": deal["id"],
        "crm_opportunity_id": opportunity,
        "stage": "proposal",
    }
    r = await api.post("/events/crm", json=moved, headers=ops)
    assert r.status_code == 202 and r.json()["stage"] == "proposal", r.text
    await eventually(lambda: _field(api, ops, deal["id"], "stage", "proposal"), what="the CRM's stage", timeout=30)
    for wrong, status in (
        ({**moved, "event_id": "crm-bad-1", "deal_id": None, "crm_opportunity_id": None}, 422),  # no key
        ({**moved, "event_id": "crm-bad-2", "deal_id": None, "crm_opportunity_id": "006-unknown"}, 404),
        ({**moved, "event_id": "crm-bad-3", "deal_id": str(uuid.uuid4())}, 409),  # linked to another deal
        ({**moved, "event_id": "crm-bad-4", "amount_minor": 5}, 422),  # an amount without its currency
    ):
        r = await api.post("/events/crm", json=wrong, headers=ops)
        assert r.status_code == status, (wrong, r.text)
    crm = {
        "event_id": "crm-evt-2",
        "type": "opportunity.closed_won",
        "crm_opportunity_id": opportunity,
        "amount_minor": 260000,
        "currency": "USD",
    }
    r = await api.post("/events/crm", json=crm, headers=ops)
    assert r.status_code == 202 and r.json() == {
        "event_id": "crm-evt-2",
        "deal_id": deal["id"],
        "stage": "closed_won",
        "duplicate": False,
    }, r.text
    r = await api.post("/events/crm", json=crm, headers=ops)  # the CRM retries: nothing happens twice
    assert r.status_code == 200 and r.json()["duplicate"] is True
    await eventually(lambda: _state(api, ops, deal["id"], "won"), what="the journey ends as won", timeout=30)
    r = await api.post("/events/crm", json={**crm, "event_id": "crm-evt-3"}, headers=ops)
    assert r.status_code == 409 and "won" in r.json()["detail"]  # found by the CRM's id alone; ended
    async with sessionmaker() as session:
        kept = await session.get(CrmEvent, "crm-evt-2")
        assert kept is not None and (kept.amount_minor, kept.currency) == (260000, "USD")
        assert await session.scalar(select(func.count()).select_from(CrmEvent)) == 2  # refused ones wrote nothing

    expected = ["partner.enrolled", "deal.registered", "deal.approved", "deal.won"]
    await eventually(
        lambda: set(expected) <= set(receiver.types("main", partner["id"])), what="every event", timeout=60
    )
    async with sessionmaker() as session:
        published = (
            await session.scalars(
                select(WebhookEvent.id)
                .where(WebhookEvent.partner_id == uuid.UUID(partner["id"]))
                .order_by(WebhookEvent.seq)
            )
        ).all()
    accepted = [r.msg_id for r in receiver.accepted["main"]]
    assert accepted == list(published), "in the order they were published, each once"
    assert receiver.types("main", partner["id"]).index("deal.registered") < receiver.types("main").index("deal.won")
    assert not receiver.refused, receiver.refused
    won = next(r for r in receiver.accepted["main"] if r.event["type"] == "deal.won")
    assert won.event["version"] == 1 and won.event["data"]["deal_id"] == deal["id"]
    assert won.event["data"]["state"] == "won" and won.event["data"]["currency"] == "USD"

    # Visible: the first delivery took three attempts (two 500s), each recorded.
    r = await api.get(f"/webhooks/{main['id']}/deliveries", headers=ops)
    assert r.status_code == 200
    rows = r.json()
    assert {d["status"] for d in rows} == {"delivered"} and len(rows) == len(published)
    first = min(rows, key=lambda d: d["id"])
    assert first["attempts"] == 3 and first["last_status_code"] == 200

    # The subscriber that was down: retried for the policy's retry_hours, then failed, visibly.
    async def failed():
        r = await api.get(f"/webhooks/{deals_only['id']}/deliveries?status=failed", headers=ops)
        return len(r.json()) == 2 and r.json()

    rows = await eventually(failed, what="deliveries failed after retry_hours", timeout=120)
    assert all(d["attempts"] >= 2 and d["last_status_code"] == 503 for d in rows), rows
    # Ops replay them once it is back: delivered, in order, with the same webhook-id.
    receiver.down.discard("deals")
    for d in sorted(rows, key=lambda d: d["id"]):
        r = await api.post(f"/webhooks/{deals_only['id']}/deliveries/{d['id']}/replay", headers=ops)
        assert r.status_code == 202 and r.json()["replays"] == 1, r.text
    await eventually(lambda: receiver.types("deals") == ["deal.approved", "deal.won"], what="replayed", timeout=30)
    r = await api.post(f"/webhooks/{deals_only['id']}/deliveries/{rows[0]['id']}/replay", headers=ops)
    assert r.status_code in (202, 409)
    # A replay of a delivered event arrives again with the same id: the receiver keeps it once.
    await eventually(lambda: sum(1 for q in receiver.requests if q.msg_id == rows[0]["event_id"]) >= 1 + 1)
    assert receiver.types("deals") == ["deal.approved", "deal.won"]
    for sub, name in ((main, "retried"), (deals_only, "failed-replayed")):
        await record_stream(dev_env.client.get_workflow_handle(delivery_workflow_id(sub["id"], partner["id"])), name)


async def test_a_tier_change_is_published_and_a_tampered_delivery_is_detected(api, ops, worker, receiver):
    await fast_webhooks(api, ops)
    await subscribe(api, ops, receiver, "main", ["partner.enrolled", "partner.tier_changed"])
    partner = await enrol(api, ops, tier="registered", domain="tamper.test")
    await eventually(lambda: receiver.accepted.get("main"), what="partner.enrolled", timeout=30)
    r = await api.patch(f"/partners/{partner['id']}", json={"tier": "silver"}, headers=ops)
    assert r.status_code == 200, r.text
    await eventually(lambda: len(receiver.accepted.get("main", [])) == 2, what="two deliveries", timeout=30)
    assert receiver.types("main") == ["partner.enrolled", "partner.tier_changed"]
    changed = receiver.accepted["main"][1].event["data"]
    assert (changed["from_tier"], changed["to_tier"], changed["by"].split(":")[0]) == ("registered", "silver", "ops")
    original = receiver.accepted["main"][0]
    hook = Webhook(receiver.secrets["main"])
    assert hook.verify(original.body, original.headers)["type"] == "partner.enrolled"
    tampered = original.body.replace(b'"registered"', b'"platinum"')
    assert tampered != original.body
    with pytest.raises(WebhookVerificationError):
        hook.verify(tampered, original.headers)
    with pytest.raises(WebhookVerificationError):  # signed with another subscription's secret
        Webhook("whsec_" + "A" * 43 + "=").verify(original.body, original.headers)


async def _field(api, headers, deal_id, field, value):
    return (await api.get(f"/deals/{deal_id}", headers=headers)).json()[field] == value


async def _state(api, headers, deal_id, state):
    return (await api.get(f"/deals/{deal_id}", headers=headers)).json()["state"] == state


async def test_an_event_no_retry_can_fix_fails_for_good(sessionmaker):
    """An unknown type or data its model refuses is non-retryable: the journey waits for ops
    (needs_attention) instead of retrying forever."""
    hooks = WebhookActivities(sessionmaker)
    at = datetime.now(UTC)
    for event_type, data in (("deal.bogus", {}), ("deal.won", {"deal_id": "d-1"})):  # deal.won lacks fields
        inp = EventInput(
            idempotency_key=f"t:{event_type}", type=event_type, partner_id=str(uuid.uuid4()), occurred_at=at, data=data
        )
        with pytest.raises(ApplicationError) as err:
            await ActivityEnvironment().run(hooks.publish, inp)
        assert err.value.non_retryable and err.value.type == "BadEvent", err.value
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def tier_changed(partner: str, key: str) -> EventInput:
    """A `partner.tier_changed` event of `partner` under `key`."""
    return EventInput(
        idempotency_key=key,
        type="partner.tier_changed",
        partner_id=partner,
        occurred_at=datetime.now(UTC),
        data={
            "partner_id": partner,
            "partner_name": "P",
            "from_tier": "registered",
            "to_tier": "silver",
            "by": "ops:t",
        },
    )


async def test_an_event_and_its_deliveries_are_one_statement_and_written_once(sessionmaker):
    """`write_event`: a new event, with one pending delivery per active subscription to its type
    (by name or the wildcard; not an inactive one, another type's, or one made after the event),
    is one statement; written again (a retry), it is the same event, the same subscriptions and no
    second delivery."""
    from activities.webhooks import write_event
    from store.models.integrations import WebhookDelivery
    from tests.helpers.statements import sql_of, statements

    def sub(types, **extra):
        return WebhookSubscription(
            url="https://receiver.example/hook", event_types=types, secret="s", created_by="ops:test", **extra
        )

    async with sessionmaker() as session, session.begin():
        named, wildcard = sub(["partner.tier_changed"]), sub(["*"])
        others = [sub(["deal.won"]), sub(["partner.tier_changed"], active=False)]
        session.add_all([named, wildcard, *others])
    partner = str(uuid.uuid4())
    inp = tier_changed(partner, f"t:tier:{partner}")
    with statements() as sent:
        async with sessionmaker() as session, session.begin():
            first, subs = await write_event(session, inp)
    assert len(sent) == 1, sql_of(sent)
    assert sorted(subs) == sorted([named.id, wildcard.id])
    async with sessionmaker() as session, session.begin():
        later = sub(["*"])  # made after the event: not one of its subscriptions
        session.add(later)
    async with sessionmaker() as session, session.begin():
        again, subs_again = await write_event(session, inp)
    assert again == first and sorted(subs_again) == sorted(subs)
    async with sessionmaker() as session:
        deliveries = (await session.execute(select(WebhookDelivery.subscription_id, WebhookDelivery.status))).all()
        assert sorted(deliveries) == sorted([(named.id, "pending"), (wildcard.id, "pending")])
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 1


async def test_a_published_event_reads_the_newest_policy_in_its_own_statement(sessionmaker):
    """What a published event refreshes depends on the current policy (`Refresh.due`): the event's
    statement reads the newest version too, so a process that parsed that version sends nothing
    more; one that has not (another process stored a newer one) reads it, as before."""
    from activities.webhooks import Refresh, Refreshed, _write_event
    from store import repo
    from tests.helpers.statements import sql_of, statements

    refresh = Refresh(
        types=frozenset({"partner.tier_changed"}), journeys=(Refreshed("health", "refresh", lambda p: True),)
    )
    partner = str(uuid.uuid4())

    def event(n: int) -> EventInput:
        return tier_changed(partner, f"t:newest:{partner}:{n}")

    async with sessionmaker() as session, session.begin():
        current = await repo.current_policy(session)  # this process has parsed the newest version
    with statements() as sent:
        async with sessionmaker() as session, session.begin():
            _, _, newest = await _write_event(session, event(1))
            due = await refresh.due(session, "partner.tier_changed", newest)
    assert newest is not None and newest[0] == current.version
    assert [j.journey for j in due] == ["health"]
    assert len(sent) == 1, sql_of(sent)

    async with sessionmaker() as session, session.begin():  # another process stores a newer version
        version = await repo.save_policy(session, current.policy, "test:another-process")
    with statements() as sent:
        async with sessionmaker() as session, session.begin():
            _, _, newest = await _write_event(session, event(2))
            due = await refresh.due(session, "partner.tier_changed", newest)
    assert newest is not None and newest[0] == version
    assert [j.journey for j in due] == ["health"]
    assert len(sent) == 2, f"an unknown version is read: {sql_of(sent)}"
    with statements() as sent:
        async with sessionmaker() as session, session.begin():
            assert await refresh.due(session, "deal.won", newest) == []  # not a type it refreshes
    assert sent == []
