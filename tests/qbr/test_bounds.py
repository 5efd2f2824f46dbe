"""A QBR cannot be wedged or flooded by what a client sends (dev server, days of a second): a
meeting in year 9999 or without a zone, sent straight to Temporal (no API in front), is refused by
the validator and the journey keeps answering; the policy caps reschedules (409 through the API);
the tier decision is answered once it is recorded (read right after the answer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Role
from domain.qbr import SCHEDULE, Meeting, MeetingProposal, qbr_id
from tests.helpers.api import create_cam, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def gold_qbr_waiting(api, ops, sessionmaker, period: str, *, max_reschedules: int = 20):
    """A gold partner's QBR of `period` (one cycle per period on the shared dev server)."""
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["qbr"].update(schedule_deadline_days=600, meeting_window_days=900)
    policy["limits"] = {"max_reschedules": max_reschedules}
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text
    cam = await create_cam(api, ops)
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="bounded-qbr.test")
    pid = partner["id"]
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    assert (await api.post("/qbr/cycles", json={"period": period}, headers=ops)).status_code == 201

    async def review_pending():
        r = await api.get(f"/partners/{pid}/qbr/{period}", headers=cam_h)
        got = r.json() if r.status_code == 200 else None
        ok = got and got["state"] == "scheduling" and got["review"] and got["review"]["state"] == "pending"
        return got if ok else None

    await eventually(review_pending, what="the QBR waiting for a meeting time and a tier decision")
    return pid, period, cam_h


async def test_a_meeting_in_year_9999_sent_past_the_api_is_refused_and_the_qbr_keeps_answering(
    api, ops, worker, sessionmaker, dev_env
):
    pid, period, cam_h = await gold_qbr_waiting(api, ops, sessionmaker, "2026-Q1")
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


async def test_reschedules_are_capped_by_the_policy(api, ops, worker, sessionmaker):
    pid, period, cam_h = await gold_qbr_waiting(api, ops, sessionmaker, "2026-Q3", max_reschedules=2)
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    for n in range(2):
        body = {"starts_at": (start + timedelta(hours=n)).isoformat()}
        r = await api.post(f"/partners/{pid}/qbr/{period}/meeting", json=body, headers=cam_h)
        assert r.status_code == 200, r.text
    r = await api.post(f"/partners/{pid}/qbr/{period}/meeting", json={"starts_at": start.isoformat()}, headers=cam_h)
    assert r.status_code == 409 and "allows 2 meeting proposals" in r.json()["detail"], r.text


async def test_the_tier_decision_is_answered_once_recorded(api, ops, worker, sessionmaker):
    pid, period, cam_h = await gold_qbr_waiting(api, ops, sessionmaker, "2026-Q4")
    body = {"approve": False, "reason": "first quarter in the program"}
    r = await api.post(f"/partners/{pid}/qbr/{period}/tier-decision", json=body, headers=cam_h)
    assert r.status_code == 200 and r.json()["state"] == "kept", r.text
    reviews = (await api.get(f"/partners/{pid}/tier-reviews", headers=ops)).json()
    assert [(x["state"], x["reason"]) for x in reviews] == [("kept", "first quarter in the program")]
