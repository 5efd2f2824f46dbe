"""Ops read every journey in the Temporal Web UI as a story: a static summary and details, a
summary on every activity and timer, current details that follow the state, and a NextDeadline
search attribute to list what is due (all user metadata goes through the payload codec)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata

from tests.helpers.api import create_cam, deal_body, enrol
from tests.helpers.keys import CONVERTER
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def summaries(handle) -> dict[str, list[str]]:
    """The decoded summaries of the history's activities (local ones included: their markers) and timers."""
    out: dict[str, list[str]] = {"activity": [], "timer": []}
    async for event in handle.fetch_history_events():
        kind = {
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity",
            EventType.EVENT_TYPE_TIMER_STARTED: "timer",
        }.get(event.event_type)
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            kind = "activity" if event.marker_recorded_event_attributes.marker_name == "core_local_activity" else None
        if kind is None:
            continue
        assert event.user_metadata.HasField("summary"), f"{kind} without a summary: {event}"
        assert event.user_metadata.summary.metadata["encoding"] == b"binary/encrypted"  # through the codec
        (decoded,) = await CONVERTER.decode([event.user_metadata.summary], [str])
        out[kind].append(decoded)
    return out


async def details(handle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def listed(client, query: str) -> list[str]:
    return [wf.id async for wf in client.list_workflows(query)]


async def test_a_deal_tells_its_story(api, ops, worker, dev_env):
    await api.put("/policy", json=fast_policy(day_seconds=3).model_dump(mode="json"), headers=ops)
    cam = await create_cam(api, ops, name="Casey Morgan")
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="story.test", name="Contoso Cloud")
    r = await api.post("/deals", json={**deal_body(amount="48000.00"), "partner_id": partner["id"]}, headers=ops)
    deal = r.json()
    handle = dev_env.client.get_workflow_handle(f"deal-{deal['id']}")
    desc = await handle.describe()
    assert await desc.static_summary() == (
        f"Deal: Globex Corporation — network, USD 48,000.00 — Contoso Cloud (gold, CAM {cam['id']})"
    )
    assert f"**Deal** {deal['id']}" in (await desc.static_details() or "")

    # Waiting for the CAM: the details say who, the next deadline is the approval SLA.
    text = await eventually(lambda: _has(details(handle), "the CAM's decision"), what="details while pending")
    assert "**pending_approval**" in text and "approval SLA: remind cam" in text
    story = await eventually(lambda: _timers(handle), what="the SLA timer")
    assert "approval SLA: remind cam" in story["timer"]
    assert "read the program policy (version 2)" in story["activity"]
    assert "queue the approval request with one-click links to cam" in story["activity"]

    # NextDeadline lists it among what is due soon; once that deadline passed it is not listed again.
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    due_soon = f"NextDeadline < '{soon}' AND ExecutionStatus = 'Running' AND Journey = 'deal'"
    assert handle.id in await eventually(lambda: listed(dev_env.client, due_soon), what="listed as due soon")
    first_deadline = await _deadline(handle)
    await eventually(lambda: _past(first_deadline), timeout=20, what="SLA passed")
    until_first = f"NextDeadline <= '{first_deadline.isoformat()}' AND ExecutionStatus = 'Running'"
    await eventually(lambda: _not_in(handle.id, listed(dev_env.client, until_first)), what="next deadline moved on")
    # The SLA passed unanswered: the reminder went out and the escalation timer runs, with its own summary.
    await eventually(lambda: _with_timer(handle, "escalation: ask ops to decide"), what="the escalation timer")

    # Decided: the details follow the state.
    r = await api.post(f"/deals/{deal['id']}/decision", json={"decision": "approve", "reason": "ok"}, headers=ops)
    assert r.status_code == 200, r.text
    text = await eventually(lambda: _has(details(handle), "**approved**"), what="details once approved")
    assert "stage changes, extensions or the end of protection" in text
    story = await summaries(handle)
    assert any(s.startswith("record the deal state: approved (by ops:") for s in story["activity"])
    assert story["timer"][:2] == ["approval SLA: remind cam", "escalation: ask ops to decide"]


async def test_onboarding_and_certification_tell_theirs(api, ops, worker, dev_env):
    await api.put("/policy", json=fast_policy(day_seconds=60).model_dump(mode="json"), headers=ops)
    partner = await enrol(api, ops, tier="registered", domain="tale.test", name="Tailspin Referrals")
    onboarding = dev_env.client.get_workflow_handle(f"onboarding-{partner['id']}")
    assert await (await onboarding.describe()).static_summary() == "Onboarding: Tailspin Referrals (registered, no CAM)"
    text = await eventually(lambda: _has(details(onboarding), "portal_access due: nudge the partner"), what="details")
    assert "waiting for the partner's milestones" in text
    story = await summaries(onboarding)
    assert "write the 5-milestone activation plan" in story["activity"]
    assert "email the welcome to the partner and publish partner.enrolled" in story["activity"]
    assert story["timer"] == ["portal_access due: nudge the partner"]
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    due = f"NextDeadline < '{soon}' AND Journey = 'onboarding' AND ExecutionStatus = 'Running'"
    assert onboarding.id in await eventually(lambda: listed(dev_env.client, due), what="onboarding listed as due")

    expires = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    cert = {
        "partner_id": partner["id"],
        "person_name": "Pat Engineer",
        "person_email": "pat@tale.test",
        "track": "Network Associate",
        "product_category": "network",
        "issued_at": "2026-01-01T00:00:00Z",
        "expires_at": expires,
    }
    r = await api.post("/certifications", json=cert, headers=ops)
    handle = dev_env.client.get_workflow_handle(f"cert-{r.json()['id']}")
    summary = await (await handle.describe()).static_summary()
    assert summary.startswith("Certification: Network Associate (network) — Pat Engineer, Tailspin Referrals")
    text = await eventually(lambda: _has(details(handle), "expiry reminder, 60 days before"), what="cert details")
    assert "**active**" in text and "waiting for a renewal" in text
    story = await eventually(lambda: _timers(handle), what="the certification's first timer")
    assert story["timer"] == ["expiry reminder, 60 days before"]
    assert "record the cert state: active (by system)" in story["activity"]


async def _has(coro, needle: str):
    text = await coro
    return text if needle in text else None


async def _with_timer(handle, summary: str):
    story = await summaries(handle)
    return story if summary in story["timer"] else None


async def _timers(handle):
    story = await summaries(handle)
    return story if story["timer"] else None


async def _deadline(handle) -> datetime:
    desc = await handle.describe()
    from domain.journeys import SA_NEXT_DEADLINE

    value = desc.typed_search_attributes.get(SA_NEXT_DEADLINE)
    assert value is not None
    return value


async def _past(moment: datetime) -> bool:
    return datetime.now(UTC) > moment + timedelta(seconds=1)


async def _not_in(item, coro) -> bool:
    return item not in await coro
