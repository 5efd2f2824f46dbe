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
# POST /partners 12 → 7 → 3: the policy read once, no refresh, no re-read, no domain pre-check (7);
# then the newest policy version learnt with the key lookup (no policy statement while this
# process has parsed it), the partner, its admin, its journey record and the audit row in one
# statement (`repo.write_created`), and the start's confirmation after the answer is sent.
# POST /deals 15 → 11 → 5: one lock statement, one conflict query (11); then the policy as above,
# the partner with its certification gate and the locks in one read, the conflict and the
# credited lead in one read after the locks, the deal, its record and audit row in one
# statement, the confirmation after the answer.
# Then (5 → 4) the key's lookup kept by the API process while no key changes (api/keycache.py):
# POST /deals learns the newest policy version in its first read instead; POST /partners in a
# statement of its own (it needs the policy before its one write), so it stays at 3.
# Then (4 → 3) the conflict read and the credited lead sent with the locks, in the first read; the
# write sends the conflict read again (after the locks) and the registration decides again if it
# changed (tests/deal/test_register_race.py).
PARTNER_CREATE = 3
DEAL_CREATE = 3
DEAL_CREATE_WITH_KEY = 7  # + the stored-answer lookups (before and after the locks) and the record
NEW_POLICY = 1  # a version this process has not parsed yet: its body is read (once)


async def test_statements_per_create(api, ops, sessionmaker):
    enrol_body = {
        "name": "Counted",
        "domain": "counted.test",
        "country": "de",
        "type": "reseller",
        "contact_email": "owner@counted.test",
    }
    assert (await api.get("/policy", headers=ops)).status_code == 200  # this process parses the newest policy
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
    # (here straight into the database) is the one the next create pins: the key lookup sees a
    # version this process has not parsed, so its body is read.
    async with sessionmaker() as session:
        version = await repo.save_policy(session, fast_policy(day_seconds=2), "test:another-process")
        await session.commit()
    body = deal_body(partner_id=partner["id"], customer_name="Umbrella", customer_domain="umbrella.com")
    with statements() as sent:
        r = await api.post("/deals", json=body, headers=ops)
    assert r.status_code == 201, r.text
    assert len(sent) == DEAL_CREATE + NEW_POLICY, f"POST /deals (new policy) sent {len(sent)}:\n{sql_of(sent)}"
    async with sessionmaker() as session:
        record = await session.get(JourneyRecord, f"{JOURNEY}-{r.json()['id']}")
    assert record is not None and record.start_input["policy_version"] == version
    assert (await api.get("/policy", headers=ops)).json()["policy"]["day_seconds"] == 2
