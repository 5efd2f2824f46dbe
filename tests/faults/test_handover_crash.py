"""A CAM handover survives its worker (issue 22): a real worker process is SIGKILLed while the
handover moves its second partner (the test holds that partner's row lock, so the move is
in flight and uncommitted). A new worker retries the move after its start-to-close timeout and
the handover completes: every journey of the three partners follows the new CAM, each told
exactly once (one signal per journey in the handover's history, none left to the reconciler),
no partner moved twice, and one email per Message-ID (three introductions and one pack). About
20 s: the dead worker's move is retried after the 15 s start-to-close timeout of every step."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter

from sqlalchemy import select
from temporalio.api.enums.v1 import PendingActivityState

from api import journeys
from domain.handover import HandoverActivity
from store.models import AuditEvent, JourneyRecord, Partner
from tests.faults.test_faults import enrol_all, new_cam, put_policy, sigkill, stop, worker_process
from tests.helpers.api import follows_cam
from tests.helpers.waiting import eventually
from tests.partners.test_handover_replay import record_handover
from worker.services import SmtpSink


async def _moving(client, wid: str) -> int | None:
    """The attempt of the handover's partner move running now (None: none is)."""
    desc = await client.get_workflow_handle(wid).describe()
    for pa in desc.raw_description.pending_activities:
        if (
            pa.activity_type.name == HandoverActivity.MOVE
            and pa.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ):
            return pa.attempt
    return None


async def _signals(client, wid: str) -> Counter[str]:
    """The journeys the workflow signalled, each with how many times."""
    told: Counter[str] = Counter()
    async for event in client.get_workflow_handle(wid).fetch_history_events():
        if event.HasField("signal_external_workflow_execution_initiated_event_attributes"):
            told[
                event.signal_external_workflow_execution_initiated_event_attributes.workflow_execution.workflow_id
            ] += 1
    return told


async def test_a_handover_whose_worker_is_killed_mid_move_completes_once(
    api, ops, settings, dev_env, sessionmaker, tmp_path, tally
):
    sink = SmtpSink().start()
    first = worker_process(settings, sink.port, tmp_path / "worker1.log")
    second: subprocess.Popen | None = None
    try:
        await put_policy(api, ops, plan_days=600, escalation_days=300)
        old, new = await new_cam(api, ops), await new_cam(api, ops)
        pids = await enrol_all(api, ops, old, ["gold", "gold", "platinum"], "handover")
        async with sessionmaker() as holder:  # the second partner's row, locked: its move waits
            await holder.execute(select(Partner).where(Partner.id == uuid.UUID(pids[1])).with_for_update())
            r = await api.post(
                f"/cams/{old}/handover", json={"to_cam_id": new, "partner_ids": pids, "note": "n"}, headers=ops
            )
            assert r.status_code == 202, r.text
            handover, wid = r.json()["id"], r.json()["workflow_id"]
            progress = f"/cams/{old}/handovers/{handover}"

            async def second_move_in_flight() -> bool:
                got = (await api.get(progress, headers=ops)).json()
                states = [p["state"] for p in got["partners"]]
                return states == ["moved", "pending", "pending"] and await _moving(dev_env.client, wid) == 1

            await eventually(second_move_in_flight, timeout=45, what="the second partner's move in flight")
            await eventually(lambda: len(sink.messages) >= 1, what="the first partner's introduction")
            r = await api.patch(f"/partners/{pids[2]}", json={"cam_id": old}, headers=ops)  # meanwhile: refused
            assert r.status_code == 409 and "being handed over" in r.json()["detail"], r.text
            await asyncio.to_thread(sigkill, first)
            t_kill = time.time()
            await holder.rollback()
        second = worker_process(settings, sink.port, tmp_path / "worker2.log")

        async def completed() -> dict | None:
            got = (await api.get(progress, headers=ops)).json()
            return got if got["state"] == "completed" else None

        done = await eventually(completed, timeout=60, what="the handover completed by the new worker")
        t_done = time.time()
        await record_handover(dev_env.client.get_workflow_handle(wid), "worker-killed-mid-move")
        assert [p["state"] for p in done["partners"]] == ["moved"] * 3

        async with sessionmaker() as session:
            records = (
                await session.scalars(
                    select(JourneyRecord).where(JourneyRecord.partner_id.in_([uuid.UUID(p) for p in pids]))
                )
            ).all()
            moves = (
                await session.scalars(
                    select(AuditEvent.idempotency_key).where(AuditEvent.action == "partner.coverage_changed")
                )
            ).all()
            assert await journeys.deliver_coverage(session, dev_env.client) == 0  # none left behind
        assert sorted(moves) == sorted(f"{wid}:move:{p}" for p in pids)  # each partner moved once
        told = await _signals(dev_env.client, wid)
        assert set(told) == {r.workflow_id for r in records} and set(told.values()) == {1}, told
        assert all(r.coverage_version == 1 for r in records)
        for wid_ in told:  # every journey runs (a 600-day plan) and follows the new CAM
            await eventually(lambda w=wid_: follows_cam(dev_env.client, w, new), what=wid_)

        await eventually(
            lambda: len([m for m in sink.messages if m["X-CAMLights-Template"] == "pack"]) == 1, what="the pack"
        )
        mine = [m for m in sink.messages if m["X-CAMLights-Template"] in ("introduction", "pack")]
        assert Counter(m["X-CAMLights-Template"] for m in mine) == {"introduction": 3, "pack": 1}
        ids = Counter(m["Message-ID"] for m in sink.messages)
        assert all(n == 1 for n in ids.values()), ids
        tally(
            1,
            len(records),
            f"worker SIGKILLed inside {HandoverActivity.MOVE} (partner 2 of 3); the new worker completed the "
            f"handover {t_done - t_kill:.0f}s later, {sum(told.values())} journeys told once each, "
            f"{len(sink.messages)} emails, one per Message-ID",
        )
    finally:
        sigkill(first)
        stop(second)
        sink.stop()
