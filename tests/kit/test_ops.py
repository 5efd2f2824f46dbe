"""What ops watch: a step failing transiently for longer than the policy says is listed with its
last error, and leaves the list once it succeeds."""

from __future__ import annotations

from tests.helpers.api import enrol
from tests.helpers.waiting import eventually


async def test_a_step_failing_for_too_long_is_listed_with_its_last_error(api, ops, worker, mailbox):
    mailbox.defer("owner@busy.test")  # the partner's mailbox answers 451: the welcome keeps failing
    partner = await enrol(api, ops, tier="registered", domain="busy.test")
    wid = f"onboarding-{partner['id']}"

    async def listed(query: str):
        r = await api.get(f"/ops/retrying{query}", headers=ops)
        assert r.status_code == 200, r.text
        return [row for row in r.json() if row["workflow_id"] == wid]

    rows = await eventually(lambda: listed("?older_than_minutes=0.01"), timeout=30, what="listed as retrying")
    assert rows[0]["activity"] == "outbox.send" and rows[0]["attempt"] >= 2
    assert "451" in rows[0]["last_failure"]
    assert await listed("") == []  # the policy's default (30 min) is not reached yet
    assert (await api.get("/ops/retrying", headers={"Authorization": "Bearer nope"})).status_code == 401
    mailbox.accept()
    await eventually(lambda: any(m["To"] == "owner@busy.test" for m in mailbox.messages), timeout=60,
                     what="the welcome delivered once the mailbox accepts")  # fmt: skip
    assert await eventually(lambda: _none(listed("?older_than_minutes=0.01")), what="no longer listed")


async def _none(coro) -> bool:
    return not await coro
