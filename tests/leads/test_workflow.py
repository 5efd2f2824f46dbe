"""The lead journey with the real policy (business hours of 24-hour days) on the time-skipping
test server, with the real activities against PostgreSQL and the SMTP server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.leads.calendar import add_business_hours
from journeys.leads.domain import DealRegistered, LeadState, OfferResponse, RecallRequest, Response
from journeys.leads.models import Lead, LeadOffer
from journeys.leads.policy import LeadsPolicy, OfferMode, RoutingRule
from journeys.leads.workflow import LeadWorkflow
from store.models.integrations import WebhookEvent
from tests.helpers.factories import make_partner
from tests.helpers.histories import record_history
from tests.helpers.waiting import eventually
from tests.leads.factories import make_lead, route_again_together, save_policy, start
from worker.main import build_worker


def decline(pid: str, code: str = "no_capacity") -> OfferResponse:
    return OfferResponse(partner_id=pid, response=Response.decline, by=f"partner:{pid}", reason_code=code)


def accept(pid: str) -> OfferResponse:
    return OfferResponse(partner_id=pid, response=Response.accept, by=f"partner:{pid}")


async def live(handle) -> list[str]:
    return [o.partner_id for o in (await handle.query(LeadWorkflow.progress)).live_offers]


async def offers(sessionmaker, lead) -> list[LeadOffer]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(LeadOffer).where(LeadOffer.lead_id == lead.id).order_by(LeadOffer.offer_no)
                )
            ).all()
        )


async def test_sequential_decline_expiry_accept_and_conversion(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """One live offer at a time; a decline and an expiry move on to partners never offered before;
    the deadline counts the partner's business hours; a registered deal converts the lead."""
    partners = [await make_partner(sessionmaker, tier=Tier.gold, name=f"P{i}") for i in range(3)]
    lead = await make_lead(sessionmaker)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, lead, task_queue)
        await eventually(lambda: _n_live(handle, 1), what="first offer")
        (first,) = await live(handle)
        await handle.execute_update(LeadWorkflow.respond, decline(first))
        await eventually(lambda: _n_live(handle, 1), what="second offer")
        (second,) = await live(handle)
        assert second != first
        with pytest.raises(WorkflowUpdateFailedError):  # the declined partner has no offer any more
            await handle.execute_update(LeadWorkflow.respond, accept(first))
        (offer,) = (await handle.query(LeadWorkflow.progress)).live_offers
        await ts_env.sleep(offer.expires_at - await ts_env.get_current_time() + timedelta(minutes=1))
        await eventually(lambda: _n_live(handle, 1), what="third offer")
        (third,) = await live(handle)
        assert third not in (first, second)
        await handle.execute_update(LeadWorkflow.respond, accept(third))
        await handle.signal(
            LeadWorkflow.deal_registered,
            DealRegistered(deal_id="00000000-0000-0000-0000-000000000001", partner_id=third, by=f"partner:{third}"),
        )
        result = await handle.result()
        await record_history(handle, "leads-sequential-converted")
    assert result.state == LeadState.converted and result.partner_id == third
    rows = await offers(sessionmaker, lead)
    assert [(r.partner_id.hex, r.state) for r in rows] == [
        (uuid_hex(first), "declined"),
        (uuid_hex(second), "expired"),
        (uuid_hex(third), "accepted"),
    ]
    assert rows[0].reason_code == "no_capacity"
    expected = add_business_hours(
        rows[1].offered_at,
        16,
        tz="Europe/Berlin",
        country="DE",
        working_days=[0, 1, 2, 3, 4],
        day_starts=LeadsPolicy().hours[0],
        day_ends=LeadsPolicy().hours[1],
    )
    assert rows[1].expires_at == expected
    assert rows[1].expires_at.astimezone().weekday() < 5
    sent = [(m["X-CAMLights-Template"], m["To"]) for m in mailbox.messages]
    by_id = {str(p.id): p.contact_email for p in partners}
    assert sent == [
        ("offer", by_id[first]),
        ("offer", by_id[second]),
        ("offer_reminder", by_id[second]),
        ("offer", by_id[third]),
    ], sent
    async with sessionmaker() as session:
        row = await session.get(Lead, lead.id)
    assert row.state == "converted" and str(row.partner_id) == third and row.deal_id is not None
    assert len(row.routing) == 3 and "round_robin" in row.routing[0]["result"]["pick"]["reasons"][-1]
    async with sessionmaker() as session:
        events = await session.execute(select(WebhookEvent.type, WebhookEvent.partner_id).order_by(WebhookEvent.seq))
    assert [(t, str(p)) for t, p in events.all()] == [
        ("lead.offered", first),
        ("lead.declined", first),
        ("lead.offered", second),
        ("lead.expired", second),
        ("lead.offered", third),
        ("lead.accepted", third),
        ("lead.converted", third),
    ]


def uuid_hex(pid: str) -> str:
    return pid.replace("-", "")


async def _n_live(handle, n: int) -> bool:
    return len(await live(handle)) == n


async def test_max_offers_then_unplaced_and_recall_to_a_partner(ts_env, sessionmaker, base_settings, task_queue):
    a = await make_partner(sessionmaker, tier=Tier.gold)
    b = await make_partner(sessionmaker, tier=Tier.gold)
    version = await save_policy(sessionmaker, ProgramPolicy(leads=LeadsPolicy(max_offers=2)))
    lead = await make_lead(sessionmaker)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, lead, task_queue, version)
        for _ in range(2):
            await eventually(lambda: _n_live(handle, 1), what="an offer")
            (pid,) = await live(handle)
            await handle.execute_update(LeadWorkflow.respond, decline(pid, "not_our_product"))
        await eventually(lambda: _state(handle, LeadState.unplaced), what="unplaced")
        progress = await handle.query(LeadWorkflow.progress)
        assert sorted(progress.offered) == sorted([str(a.id), str(b.id)])
        assert "2 offers made" in progress.path[-1]
        with pytest.raises(WorkflowUpdateFailedError):  # only ops recall
            await handle.execute_update(LeadWorkflow.recall, RecallRequest(by=f"partner:{a.id}", reason="mine"))
        await handle.execute_update(
            LeadWorkflow.recall, RecallRequest(by="ops:k1", reason="A asked for it", to_partner_id=str(a.id))
        )
        await eventually(lambda: _n_live(handle, 1), what="the offer ops made")
        assert await live(handle) == [str(a.id)]
        await handle.execute_update(LeadWorkflow.respond, accept(str(a.id)))
        await ts_env.sleep(timedelta(days=31))  # the conversion window (30 days) ends with no deal
        result = await handle.result()
        await record_history(handle, "leads-unplaced-recalled-lapsed")
    assert result.state == LeadState.lapsed and result.partner_id == str(a.id)


async def _state(handle, state: LeadState) -> bool:
    return (await handle.query(LeadWorkflow.progress)).state == state


async def test_pool_two_concurrent_accepts_one_wins(ts_env, sessionmaker, mailbox, base_settings, task_queue):
    partners = [await make_partner(sessionmaker, tier=Tier.gold) for _ in range(3)]
    rules = [RoutingRule(name="pool", mode=OfferMode.pool, pool_size=3)]
    version = await save_policy(sessionmaker, ProgramPolicy(leads=LeadsPolicy(rules=rules)))
    lead = await make_lead(sessionmaker)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, lead, task_queue, version)
        await eventually(lambda: _n_live(handle, 3), what="three offers")
        one, two = str(partners[0].id), str(partners[1].id)
        results = await asyncio.gather(
            handle.execute_update(LeadWorkflow.respond, accept(one)),
            handle.execute_update(LeadWorkflow.respond, accept(two)),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
        assert len(won) == 1 and len(lost) == 1, results
        winner = won[0].partner_id
        progress = await handle.query(LeadWorkflow.progress)
        assert progress.state == LeadState.accepted and progress.partner_id == winner and not progress.live_offers
        await handle.terminate("test over")
    states = sorted(r.state for r in await offers(sessionmaker, lead))
    assert states == ["accepted", "withdrawn", "withdrawn"]


async def test_leads_routed_at_one_instant_never_share_the_partner_waiting_longest(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Six offers made overnight expire at one instant and their leads are routed again at once:
    the routings take turns (`ROUTING_LOCK`), so round robin gives each lead another of the six
    partners never offered a lead, not one partner two leads (which two at once did)."""
    partners, second = await route_again_together(ts_env, sessionmaker, base_settings, task_queue, leads=6, partners=12)
    assert sorted(str(o.partner_id) for o in second) == partners[6:]
