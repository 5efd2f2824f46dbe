"""A coverage change reaches every journey that follows it (issue 29): the change is numbered in
its transaction, a journey Temporal did not take the signal for stays behind until the reconciler
tells it, and the old CAM's one-click links are gone (410) at once, told or not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from temporalio.client import Interceptor, OutboundInterceptor, SignalWorkflowInput
from temporalio.service import RPCError, RPCStatusCode

from api import journeys
from domain.enums import Role
from domain.journeys import SA_CAM_ID, workflow_id
from domain.links import MDF_SALT, LinkClaims, make_token
from store.models import JourneyRecord, Partner
from tests.deal.test_api import fast, links
from tests.helpers.api import api_through, create_cam, deal_body, enrol, new_key
from tests.helpers.waiting import eventually


class SignalFaults(Interceptor):
    """Temporal unreachable for the first `failing` signals (UNAVAILABLE), then passes through."""

    def __init__(self, failing: int):
        self.failing, self.failed = failing, 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        faults = self

        class Outbound(OutboundInterceptor):
            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                if faults.failed < faults.failing:
                    faults.failed += 1
                    raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
                await self.next.signal_workflow(input)

        return Outbound(next)


async def cam_of(dev_env, wid: str) -> str | None:
    return (await dev_env.client.get_workflow_handle(wid).describe()).typed_search_attributes.get(SA_CAM_ID)


async def versions(sessionmaker, partner_id: str, wid: str) -> tuple[int, int]:
    async with sessionmaker() as session:
        partner = await session.scalar(select(Partner.coverage_version).where(Partner.id == uuid.UUID(partner_id)))
        record = await session.scalar(select(JourneyRecord.coverage_version).where(JourneyRecord.workflow_id == wid))
        return partner, record


async def test_a_missed_coverage_signal_is_sent_by_the_reconciler_and_the_old_cams_links_refuse(
    api, ops, worker, mailbox, sessionmaker, settings, dev_env
):
    await fast(api, ops)
    old = await create_cam(api, ops)
    new = await create_cam(api, ops, email="nina@vendor.test", name="Nina")
    partner = await enrol(api, ops, tier="platinum", cam_id=old["id"], domain="moved.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    deal = (await api.post("/deals", json=deal_body(), headers=partner_h)).json()
    wid = workflow_id("deal", deal["id"])
    request = await eventually(
        lambda: next((m for m in mailbox.messages if m["X-CAMLights-Template"] == "approval_request"), None),
        what="the old CAM's approval request",
    )
    urls = links(request)
    assert (await api.get(urls["approve"])).status_code == 200  # the old CAM's link, before the change
    assert await cam_of(dev_env, wid) == old["id"]

    faults = SignalFaults(failing=1)
    async with api_through(settings, dev_env, faults) as unlucky:  # Temporal does not answer the signal
        r = await unlucky.patch(f"/partners/{partner['id']}", json={"cam_id": new["id"]}, headers=ops)
    assert r.status_code == 200 and r.json()["cam_id"] == new["id"], r.text
    assert faults.failed == 1
    assert await versions(sessionmaker, partner["id"], wid) == (1, 0)  # the journey is behind
    assert await cam_of(dev_env, wid) == old["id"]

    # Told or not, the old CAM's link decides nothing any more: its page and its confirmation are 410 (gone).
    for answer in (await api.get(urls["approve"]), await api.post(urls["approve"], data={"reason": "ok"})):
        assert answer.status_code == 410 and "no longer covers the partner" in answer.text, answer.text
    got = (await api.get(f"/deals/{deal['id']}", headers=ops)).json()
    assert got["state"] == "pending_approval" and got["decided_by"] is None

    assert await journeys.reconcile(sessionmaker, dev_env.client, older_than=timedelta(0)) == 0
    await eventually(lambda: _is(cam_of(dev_env, wid), new["id"]), what="the journey following the new CAM")
    assert await versions(sessionmaker, partner["id"], wid) == (1, 1)

    # An MDF link is judged the same way: the old CAM's is refused, the current CAM's opens.
    today = datetime.now(UTC).date()
    r = await api.post(
        "/mdf/requests",
        json={
            "activity_type": "event",
            "title": "Roadshow",
            "planned_start": str(today + timedelta(days=5)),
            "planned_end": str(today + timedelta(days=6)),
            "amount_minor": 100_000,
            "currency": "USD",
        },
        headers=partner_h,
    )
    assert r.status_code == 201, r.text

    def mdf_link(cam: dict) -> str:
        claims = LinkClaims(
            r.json()["id"],
            "request:approve",
            f"cam:{cam['id']}",
            uuid.uuid4().hex,
            datetime.now(UTC) + timedelta(days=1),
            level=0,
            round=1,
            amount_minor=100_000,
        )
        return f"/mdf/links/{make_token(settings.link_secret, claims, salt=MDF_SALT)}"

    refused = await api.get(mdf_link(old))
    assert refused.status_code == 410 and "no longer covers the partner" in refused.text
    assert (await api.get(mdf_link(new))).status_code == 200


async def _is(value, expected) -> bool:
    return await value == expected
