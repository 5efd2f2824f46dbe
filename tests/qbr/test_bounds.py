"""A QBR cannot be wedged or flooded by what a client sends (dev server, days of a second): a
meeting in year 9999 or without a zone, sent straight to Temporal (no API in front), is refused by
the validator and the journey keeps answering; the policy caps reschedules (409 through the API);
every update (the tier decision first) is answered once recorded (read right after the answer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Role, Tier
from domain.journeys import Coverage
from journeys.qbr.domain import SCHEDULE, Meeting, MeetingProposal, QbrInput, qbr_id
from journeys.qbr.workflow import QbrWorkflow
from tests.helpers.api import create_cam, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def gold_qbr_waiting(api, ops, sessionmaker, dev_env, task_queue, *, max_reschedules: int = 20):
    """A gold partner's QBR, started alone (cycles are one per period on the shared dev server)."""
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["qbr"].update(schedule_deadline_days=600, meeting_window_days=900)
    policy["limits"] = {"max_reschedules": max_reschedules}
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="bounded-qbr.test")
    pid, period = partner["id"], "2026-Q2"
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    inp = QbrInput(
        partner_id=pid, partner_name=partner["name"], period=period, coverage=Coverage(tier=Tier.gold, cam_id=cam["id"])
    )
    await dev_env.client.start_workflow(QbrWorkflow.run, inp, id=qbr_id(pid, period), task_queue=task_queue)

    async def review_pending():
        r = await api.get(f"/partners/{pid}/qbr/{period}", headers=cam_h)
        got = r.json() if r.status_code == 200 else None
        ok = got and got["state"] == "scheduling" and got["review"] and got["review"]["state"] == "pending"
        return got if ok else None

    await eventually(review_pending, what="the QBR waiting for a meeting time and a tier decision")
    return pid, period, cam_h


async def test_a_meeting_in_year_9999_sent_past_the_api_is_refused_and_the_qbr_keeps_answering(
    api, ops, worker, sessionmaker, dev_env, task_queue
):
    pid, period, cam_h = await gold_qbr_waiting(api, ops, sessionmaker, dev_env, task_queue)
    handle = dev_env.client.get_workflow_handle(qbr_id(pid, period))
    for starts_at, expected in [
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "starts_at: must lie within 3650 days"),
        (datetime(2030, 1, 1, 10, 0), "starts_at: a time needs its UTC offset"),  # naive: no comparison fails
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                SCHEDULE, MeetingProposal(starts_at=starts_at, by="ops:raw"), result_type=Meeting
            )
        assert expected in str(refused.value.cause), refused.value.cause
    # Not wedged: the journey answers the API and takes a sane proposal.
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    r = await api.post(f"/partners/{pid}/qbr/{period}/meeting", json={"starts_at": start.isoformat()}, headers=cam_h)
    assert r.status_code == 200, r.text
    r = await api.get(f"/partners/{pid}/qbr/{period}", headers=cam_h)
    assert r.status_code == 200 and r.json()["meeting"]["sequence"] == 0, r.text


async def test_reschedules_are_capped_by_the_policy(api, ops, worker, sessionmaker, dev_env, task_queue):
    pid, period, cam_h = await gold_qbr_waiting(api, ops, sessionmaker, dev_env, task_queue, max_reschedules=2)
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    for n in range(2):
        body = {"starts_at": (start + timedelta(hours=n)).isoformat()}
        r = await api.post(f"/partners/{pid}/qbr/{period}/meeting", json=body, headers=cam_h)
        assert r.status_code == 200, r.text
    r = await api.post(f"/partners/{pid}/qbr/{period}/meeting", json={"starts_at": start.isoformat()}, headers=cam_h)
    assert r.status_code == 409 and "allows 2 meeting proposals" in r.json()["detail"], r.text


async def test_every_update_is_answered_once_recorded(api, ops, worker, sessionmaker, dev_env, task_queue):
    """Each QBR update, then at once the QBR as the API reads it from the database."""
    pid, period, cam_h = await gold_qbr_waiting(api, ops, sessionmaker, dev_env, task_queue)
    url = f"/partners/{pid}/qbr/{period}"

    async def read() -> dict:
        r = await api.get(url, headers=cam_h)
        assert r.status_code == 200, r.text
        return r.json()

    body = {"approve": False, "reason": "first quarter in the program"}
    r = await api.post(f"{url}/tier-decision", json=body, headers=cam_h)
    assert r.status_code == 200 and r.json()["state"] == "kept", r.text
    assert (await read())["review"]["state"] == "kept"
    reviews = (await api.get(f"/partners/{pid}/tier-reviews", headers=ops)).json()
    assert [(x["state"], x["reason"]) for x in reviews] == [("kept", "first quarter in the program")]

    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
    r = await api.post(f"{url}/meeting", json={"starts_at": start.isoformat(), "duration_minutes": 15}, headers=cam_h)
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat((await read())["meeting"]["starts_at"]) == start

    notes = {
        "notes": "Plan agreed.",
        "action_items": [
            {"title": "Certify two engineers", "owner": "partner", "due": "2030-01-31"},
            {"title": "Joint webinar", "owner": "cam", "due": "2030-02-28"},
        ],
    }

    async def notes_taken():  # the meeting has to have started: until then 409
        r = await api.post(f"{url}/notes", json=notes, headers=cam_h)
        assert r.status_code in (200, 409), r.text
        return r.status_code == 200

    await eventually(notes_taken, what="notes taken once the meeting started")
    got = await read()
    assert got["notes"] == "Plan agreed." and [i["title"] for i in got["action_items"]] == [
        "Certify two engineers",
        "Joint webinar",
    ]
    r = await api.post(f"{url}/action-items/1/complete", headers=cam_h)
    assert r.status_code == 200, r.text
    assert (await read())["action_items"][0]["done_at"]
    r = await api.patch(f"{url}/action-items/2", json={"due": "2030-03-31"}, headers=cam_h)
    assert r.status_code == 200, r.text
    assert (await read())["action_items"][1]["due"] == "2030-03-31"
    r = await api.delete(f"{url}/action-items/2", headers=cam_h)
    assert r.status_code == 200, r.text
    assert (await read())["action_items"][1]["cancelled_at"]
