"""The SQL a create sends (issue 23: creates cost what their writes cost). Pinned per request on
the real engine, so a statement added to `POST /partners` or `POST /deals` fails here; lower the
pin when a change removes one. bench/README.md ("Creates") has the figures before and after."""

from __future__ import annotations

from journeys.deal.domain import JOURNEY
from store import repo
from store.models import JourneyRecord
from tests.helpers.api import deal_body, enrol
from tests.helpers.policies import fast_policy
from tests.helpers.statements import sql_of, statements

# What each create sends (the key lookup included; no worker runs, so nothing else does).
PARTNER_CREATE = (
    7  # was 12: the policy read once, the contact admin in one upsert, no refresh, no re-read, no domain pre-check
)
DEAL_CREATE = 11  # was 15: one lock statement, one conflict query, no refresh, no re-read
DEAL_CREATE_WITH_KEY = 15  # was 19; + the stored-answer lookups and the record (Idempotency-Key)


async def test_statements_per_create(api, ops, sessionmaker):
    enrol_body = {
        "name": "Counted",
        "domain": "counted.test",
        "country": "de",
        "type": "reseller",
        "contact_email": "owner@counted.test",
    }
    with statements() as sent:
        r = await api.post("/partners", json={**enrol_body, "tier": "registered"}, headers=ops)
    assert r.status_code == 201, r.text
    assert len(sent) == PARTNER_CREATE, f"POST /partners sent {len(sent)} statements:\n{sql_of(sent)}"
    partner = r.json()

    with statements() as sent:
        r = await api.post("/deals", json=deal_body(partner_id=partner["id"]), headers=ops)
    assert r.status_code == 201, r.text
    assert len(sent) == DEAL_CREATE, f"POST /deals sent {len(sent)} statements:\n{sql_of(sent)}"

    keyed = {**ops, "Idempotency-Key": "count-1"}
    body = deal_body(partner_id=partner["id"], customer_name="Initech", customer_domain="initech.com")
    with statements() as sent:
        r = await api.post("/deals", json=body, headers=keyed)
    assert r.status_code == 201, r.text
    assert len(sent) == DEAL_CREATE_WITH_KEY, f"POST /deals (keyed) sent {len(sent)} statements:\n{sql_of(sent)}"
    # the answer is the one stored, and a retry replays it
    again = await api.post("/deals", json=body, headers=keyed)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == r.json()
    await enrol(api, ops, tier="registered", domain="second.test")  # the helper's path still answers 201

    # The policy this process parsed is never applied stale: a version written by another process
    # (here straight into the database) is the one the next create pins, in the same statement count.
    async with sessionmaker() as session:
        version = await repo.save_policy(session, fast_policy(day_seconds=2), "test:another-process")
        await session.commit()
    body = deal_body(partner_id=partner["id"], customer_name="Umbrella", customer_domain="umbrella.com")
    with statements() as sent:
        r = await api.post("/deals", json=body, headers=ops)
    assert r.status_code == 201, r.text
    assert len(sent) == DEAL_CREATE, f"POST /deals (new policy) sent {len(sent)} statements:\n{sql_of(sent)}"
    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, f"{JOURNEY}-{r.json()['id']}")
    assert record is not None and record.start_input["policy_version"] == version
    assert (await api.get("/policy", headers=ops)).json()["policy"]["day_seconds"] == 2
