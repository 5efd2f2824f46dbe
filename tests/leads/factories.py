"""Rows and inputs of the lead journey's tests, written through the real models."""

from __future__ import annotations

import uuid

from domain.policy import ProgramPolicy
from journeys.leads.domain import LeadInput
from journeys.leads.models import Lead
from store import repo


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
