"""An MDF request cannot be wedged or flooded by its dates (time-skipping server, real activities):
a request whose activity ends on 9999-12-31 (as an unbounded start once let through) runs to its
claim without failing a workflow task; dates sent straight to Temporal outside the policy's horizon
are refused; date changes are capped by the policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.mdf.domain import ClaimSubmission, DateChange, MdfState, StartActivity
from journeys.mdf.workflow import MdfWorkflow
from store import repo
from tests.helpers.factories import make_cam, make_partner
from tests.mdf.factories import make_request, mdf_input
from tests.mdf.test_workflow import ALL_PROOF, decision, refused
from worker.main import build_worker


async def test_an_activity_ending_in_year_9999_does_not_wedge_the_request(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    policy = ProgramPolicy().model_copy(deep=True)
    policy.limits.max_date_changes = 2
    async with sessionmaker() as session, session.begin():
        await repo.save_policy(session, policy, created_by="test")
    cam = await make_cam(sessionmaker)
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    req = await make_request(sessionmaker, partner, amount_minor=100_000)
    inp = mdf_input(req, partner).model_copy(update={"planned_end": date(9999, 12, 31)})
    by = f"partner:{partner.id}"
    other = await make_request(sessionmaker, partner, amount_minor=100_000)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        # The journey an unbounded start made: it starts, opens its claim window and takes the claim.
        handle = await ts_env.client.start_workflow(MdfWorkflow.run, inp, id=f"mdf-{req.id}", task_queue=task_queue)
        answer = await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}", reason="fine"))
        assert answer.state == MdfState.approved, answer
        async with asyncio.timeout(60):  # a wedged journey never answers: fail, do not hang
            answer = await handle.execute_update(MdfWorkflow.start_activity, StartActivity(by=by))
            assert answer.state == MdfState.running, answer
            claim = ClaimSubmission(amount_minor=50_000, total_cost_minor=200_000, proof_kinds=ALL_PROOF, by=by)
            answer = await handle.execute_update(MdfWorkflow.submit_claim, claim)
        assert answer.state == MdfState.claim_review, answer
        raw = (await handle.describe()).raw_description
        assert not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt < 2

        # Straight to Temporal, past any API: dates out of the horizon are refused by the validator.
        handle = await ts_env.client.start_workflow(
            MdfWorkflow.run, mdf_input(other, partner), id=f"mdf-{other.id}", task_queue=task_queue
        )
        answer = await handle.execute_update(MdfWorkflow.decide, decision(f"cam:{cam.id}", reason="fine"))
        assert answer.state == MdfState.approved, answer
        today = datetime.now(UTC).date()
        for start, end in [(today, date(9999, 12, 31)), (date(1, 1, 1), today)]:
            change = DateChange(planned_start=start, planned_end=end, by=by)
            message = await refused(handle.execute_update(MdfWorkflow.change_dates, change), "Invalid")
            assert "must lie within 3650 days" in message, message
        for n in range(2):
            change = DateChange(planned_start=today, planned_end=today + timedelta(days=n + 1), by=by)
            assert (await handle.execute_update(MdfWorkflow.change_dates, change)).state == MdfState.approved
        message = await refused(
            handle.execute_update(MdfWorkflow.change_dates, DateChange(planned_start=today, planned_end=today, by=by)),
            "LimitReached",
        )
        assert "allows 2 date changes" in message, message
