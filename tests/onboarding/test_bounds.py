"""Milestone reports are answered once recorded (the timeline read right after the answer shows it)
and capped per journey by the policy: repeats sent straight to Temporal cannot flood the history,
and once the cap is used the API answers 409. (The API itself answers repeats from the database.)"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Role
from journeys.onboarding.domain import REPORT_MILESTONE, MilestoneDone, MilestoneReport
from tests.helpers.api import enrol, new_key
from tests.helpers.policies import fast_policy


async def test_milestone_reports_are_recorded_by_their_answer_and_capped(api, ops, worker, sessionmaker, dev_env):
    policy = fast_policy(day_seconds=1, plan_days=600, escalation_days=300).model_dump(mode="json")
    policy["limits"] = {"max_milestone_reports": 3}
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    partner = await enrol(api, ops, tier="registered", domain="reports.test")
    pid = partner["id"]
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=pid)
    r = await api.post(f"/partners/{pid}/onboarding/milestones/portal_access", headers=partner_h)
    assert r.status_code == 200 and r.json()["already_done"] is False, r.text
    timeline = (await api.get(f"/partners/{pid}/timeline", headers=ops)).json()
    assert [e["action"] for e in timeline].count("onboarding.milestone_done") == 1, timeline

    handle = dev_env.client.get_workflow_handle(f"onboarding-{pid}")
    repeat = MilestoneDone(key="portal_access", by=f"partner:{pid}")
    for _ in range(2):  # repeats straight to Temporal: answered, counted
        assert (await handle.execute_update(REPORT_MILESTONE, repeat, result_type=MilestoneReport)).already_done
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(REPORT_MILESTONE, repeat, result_type=MilestoneReport)
    assert "allows 3 milestone reports" in str(refused.value.cause)
    r = await api.post(f"/partners/{pid}/onboarding/milestones/first_training", headers=partner_h)
    assert r.status_code == 409 and "allows 3 milestone reports" in r.json()["detail"], r.text
