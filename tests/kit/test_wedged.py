"""A journey whose workflow task fails (its code cannot run: here a run started straight on Temporal,
bypassing the API, with an input the workflow cannot read) answers a clear 503 naming it to every
update and query of the API, never a 500, and ops find it in `GET /ops/retrying`."""

from __future__ import annotations

from temporalio.common import WorkflowIDReusePolicy

from tests.helpers.api import enrol
from tests.helpers.waiting import eventually


async def test_a_journey_failing_its_workflow_task_answers_503_and_is_listed_for_ops(
    api, ops, worker, dev_env, task_queue
):
    partner = await enrol(api, ops, tier="registered", domain="wedged.test")
    wid = f"onboarding-{partner['id']}"
    client = dev_env.client
    await client.get_workflow_handle(wid).terminate(reason="test: replaced by a run that cannot run")
    await client.start_workflow(
        "OnboardingWorkflow",
        {"not": "an onboarding input"},
        id=wid,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )

    async def failing_twice():
        desc = await client.get_workflow_handle(wid).describe()
        raw = desc.raw_description
        return raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt >= 2

    await eventually(failing_twice, what="the workflow task failing again and again")

    r = await api.post(f"/partners/{partner['id']}/onboarding/milestones/portal_access", headers=ops)
    assert r.status_code == 503 and wid in r.json()["detail"] and "workflow task" in r.json()["detail"], r.text
    assert r.headers["Retry-After"] == "300"
    r = await api.get(f"/partners/{partner['id']}/onboarding", headers=ops)
    assert r.status_code == 503 and wid in r.json()["detail"], r.text

    r = await api.get("/ops/retrying?older_than_minutes=0.001", headers=ops)
    assert r.status_code == 200, r.text
    rows = [row for row in r.json() if row["workflow_id"] == wid]
    assert [(row["activity"], row["attempt"] >= 2) for row in rows] == [("workflow task", True)], r.json()
    assert rows[0]["last_failure"], rows[0]
