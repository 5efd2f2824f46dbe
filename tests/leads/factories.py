"""Rows and inputs of the lead journey's tests, written through the real models."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.leads.domain import LeadInput
from journeys.leads.models import Lead, LeadOffer
from journeys.leads.policy import LeadsPolicy
from store import repo
from tests.helpers.factories import make_partner
from tests.helpers.waiting import eventually
from worker.main import build_worker


async def make_lead(sessionmaker, *, company: str = "Initech", country: str = "DE", category: str = "network") -> Lead:
    lead = Lead(
        id=uuid.uuid4(),
        company=company,
        domain=f"{uuid.uuid4().hex[:8]}.initech.test",
        contact_name="Bill",
        contact_email="bill@initech.test",
        country=country,
        region="",
        product_category=category,
        source="web",
        notes="",
        state="new",
        routing=[],
        policy_version=1,
        created_by="ops:test",
    )
    async with sessionmaker() as session, session.begin():
        session.add(lead)
    return lead


def lead_input(lead: Lead, policy_version: int | None = None, **kw) -> LeadInput:
    return LeadInput(
        lead_id=str(lead.id),
        company=lead.company,
        country=lead.country,
        region=lead.region,
        product_category=lead.product_category,
        source=lead.source,
        policy_version=policy_version,
        **kw,
    )


async def save_policy(sessionmaker, policy: ProgramPolicy) -> int:
    async with sessionmaker() as session, session.begin():
        return await repo.save_policy(session, policy, "ops:test")


async def start(ts_env, lead: Lead, task_queue: str, version: int | None = None):
    from journeys.leads.workflow import LeadWorkflow

    return await ts_env.client.start_workflow(
        LeadWorkflow.run, lead_input(lead, version), id=f"leads-{lead.id}", task_queue=task_queue
    )


async def route_again_together(
    ts_env, sessionmaker, settings, task_queue, *, leads: int, partners: int, interceptors=()
):
    """`leads` leads offered one after the other outside business hours (today and tomorrow are no
    working days), so every offer shares one deadline, then left to expire: their routings after
    the expiry run at one instant. The partners (gold, in Germany) sorted by id, and the leads'
    second offers in lead id order."""
    from journeys.leads.workflow import LeadWorkflow

    async def offers() -> list[LeadOffer]:
        async with sessionmaker() as session:
            stmt = select(LeadOffer).order_by(LeadOffer.lead_id, LeadOffer.offer_no)
            return list((await session.scalars(stmt)).all())

    async def offered(handle) -> bool:
        return bool((await handle.query(LeadWorkflow.progress)).live_offers)

    async def routed_again() -> bool:
        return sum(o.offer_no == 2 for o in await offers()) == leads

    berlin = (await ts_env.get_current_time()).astimezone(ZoneInfo("Europe/Berlin"))
    working = [(berlin.weekday() + d) % 7 for d in (2, 3, 4)]
    version = await save_policy(sessionmaker, ProgramPolicy(leads=LeadsPolicy(working_days=working)))
    ids = sorted([str((await make_partner(sessionmaker, tier=Tier.gold, name=f"P{i}")).id) for i in range(partners)])
    async with build_worker(ts_env.client, settings, sessionmaker, task_queue, interceptors=list(interceptors)):
        for i in range(leads):  # one after the other: the first offers are never concurrent
            handle = await start(ts_env, await make_lead(sessionmaker, company=f"Lead {i}"), task_queue, version)
            await eventually(lambda h=handle: offered(h), what=f"lead {i}'s first offer")
        first = await offers()
        assert len({o.expires_at for o in first}) == 1, "one deadline for every offer"
        assert sorted(str(o.partner_id) for o in first) == ids[:leads], "round robin: the never offered first"
        await ts_env.sleep(first[0].expires_at - await ts_env.get_current_time() + timedelta(minutes=1))
        await eventually(routed_again, what="every lead routed again")
    return ids, [o for o in await offers() if o.offer_no == 2]
