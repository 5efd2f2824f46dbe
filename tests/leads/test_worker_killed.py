"""A real worker process SIGKILLed in the middle of an offer's acceptance window: the deadline is
in the history (a durable timer, computed by the `leads.offer` activity), so a new worker started
before it expires the offer on time, once, and routing goes on (nobody else: `unplaced`). About
20 s: a worker process's start (the kill must hit a real process) and a 12-second window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from journeys.leads.models import Lead, LeadOffer
from tests.faults.test_faults import sigkill, worker_process
from tests.helpers.api import enrol
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from tests.leads.test_api import lead_body

# Every hour of every day counts, and a policy day lasts 144 s: 2 business hours are 12 s.
WINDOW = timedelta(seconds=12)


async def test_the_expiry_fires_on_time_after_the_worker_is_killed_mid_window(
    api, ops, settings, dev_env, sessionmaker, tmp_path
):
    policy = fast_policy(day_seconds=144).model_dump(mode="json")
    policy["leads"] |= {
        "offer_hours": 2,
        "reminder_hours": 0,
        "working_days": list(range(7)),
        "day_starts": "00:00",
        "day_ends": "23:59",
    }
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    partner = await enrol(api, ops, tier="registered", domain="killed.test")
    first = worker_process(settings, settings.smtp_port, tmp_path / "worker1.log")
    second = None
    try:
        lead = (await api.post("/leads", json=lead_body(), headers=ops)).json()

        async def live_offer():
            async with sessionmaker() as session:
                return await session.scalar(select(LeadOffer).where(LeadOffer.lead_id == lead["id"]))

        offer = await eventually(live_offer, timeout=30, what="the offer made by the first worker")
        handle = dev_env.client.get_workflow_handle(f"leads-{lead['id']}")

        async def waiting() -> bool:  # the offer's emails and event are out: the journey sleeps
            history = await handle.fetch_history()
            return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)

        await eventually(waiting, timeout=WINDOW.total_seconds(), what="the journey waiting on the deadline")
        await asyncio.to_thread(sigkill, first)  # mid-window
        assert datetime.now(UTC) < offer.expires_at, "killed after the deadline: the window is too short here"
        assert offer.expires_at - offer.offered_at <= WINDOW + timedelta(seconds=1)
        second = worker_process(settings, settings.smtp_port, tmp_path / "worker2.log")

        async def expired():
            async with sessionmaker() as session:
                got = await session.scalar(select(LeadOffer).where(LeadOffer.lead_id == lead["id"]))
                return got if got.state == "expired" else None

        done = await eventually(expired, timeout=WINDOW.total_seconds() + 30, what="the offer expired")
        assert str(done.partner_id) == partner["id"] and done.answered_by == "system"
        # The timer fired at the deadline (server time); the new worker recorded it right after.
        history = await handle.fetch_history()
        fired = [
            e.event_time.ToDatetime(UTC) for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
        ]
        assert fired and abs(fired[0] - offer.expires_at) < timedelta(seconds=1.5), (fired, offer.expires_at)
        assert timedelta(0) <= done.answered_at - offer.expires_at < timedelta(seconds=12)
        async with sessionmaker() as session:
            offers = (await session.scalars(select(LeadOffer).where(LeadOffer.lead_id == lead["id"]))).all()
        assert [o.state for o in offers] == ["expired"]  # once; never offered to it again
        await eventually(lambda: _unplaced(sessionmaker, lead["id"]), timeout=15, what="unplaced: nobody left")
    finally:
        for proc in (first, second):
            if proc is not None:
                await asyncio.to_thread(sigkill, proc)


async def _unplaced(sessionmaker, lead_id) -> bool:
    async with sessionmaker() as session:
        return await session.scalar(select(Lead.state).where(Lead.id == lead_id)) == "unplaced"
