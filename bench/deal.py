"""Deal registration journey cost: N deals of `registered` partners inside the auto-approval
policy (`deal-{id}` started as the API starts it), each told `closed_won` at once (the journey
keeps the stage change in its inbox until the deal is approved and protected), every result
awaited; then the bare-Temporal baseline of the same shape. One-hour policy days.

Business steps of one journey: record the approval, the approval email, record the stage,
record the win, the win email (5)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from bench import harness, seed
from bench.harness import Section, Stack

BUSINESS_STEPS = 5


def deal_rows(partners: list[dict], amount_minor: int = 500_000) -> list[dict]:
    """One pending deal per partner (inside the registered tier's auto-approval limit)."""
    now = datetime.now(UTC)
    rows = []
    for i, p in enumerate(partners):
        c = uuid.uuid4().hex[:10]
        rows.append(
            {
                "id": uuid.uuid4(),
                "partner_id": p["id"],
                "customer_name": f"Customer {c} Inc",
                "customer_domain": f"{c}.example",
                "customer_key": f"{c}.example",
                "customer_name_key": f"customer {c}",
                "product_category": seed.CATEGORIES[i % len(seed.CATEGORIES)],
                "amount_minor": amount_minor,
                "currency": "USD",
                "expected_close_date": (now + timedelta(days=90)).date(),
                "stage": "qualification",
                "state": "pending_approval",
                "conflict_with": None,
                "decided_by": None,
                "decided_at": None,
                "decision_reason": None,
                "protected_until": None,
                "extensions_used": 0,
                "created_by": f"partner:{p['id']}",
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def deal_input(deal: dict, partner: dict, policy_version: int | None = None):
    from journeys.deal.domain import DealInput

    return DealInput(
        deal_id=str(deal["id"]),
        partner_id=str(partner["id"]),
        partner_name=partner["name"],
        coverage=harness.coverage(partner),
        customer_name=deal["customer_name"],
        product_category=deal["product_category"],
        amount_minor=deal["amount_minor"],
        currency=deal["currency"],
        stage=deal["stage"],
        state=deal["state"],
        policy_version=policy_version,
    )


async def run(st: Stack, n: int) -> list[Section]:
    from journeys.deal.domain import CHANGE_STAGE, JOURNEY, DealStage, StageChange
    from worker.main import build_worker

    before = await harness.db_snapshot(st)
    partners = await harness.seed_partners(st, n + 1)
    deals = deal_rows(partners)
    await asyncio.to_thread(seed.write, st.settings.database_url, seed.Program(deals=deals))
    task_queue = f"bench-deal-{uuid.uuid4().hex[:8]}"
    version = await harness.policy_version(st)  # pinned, as the API pins it

    async def journey(pair):
        deal, partner = pair
        handle = await harness.launch(
            st.client, JOURNEY, deal["id"], deal_input(deal, partner, version), task_queue, deal["state"]
        )
        await handle.signal(CHANGE_STAGE, StageChange(stage=DealStage.closed_won, by=f"partner:{partner['id']}"))
        return handle, (await handle.result())["state"]

    # the baseline just before the journeys, and again just after them (compare)
    bracket = await harness.baseline_first(st.client, harness.Shape(BUSINESS_STEPS, signals=1), n)
    st.smtp.clear()
    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        wall, done, cpu = await harness.drive("deal", list(zip(deals, partners, strict=True)), journey)
    failed = sum(1 for _, state in done if state != "won")
    real = {"wall": wall, "cpu": cpu, **await harness.history_stats([h for h, _ in done[:50]])}
    await harness.measure_costs(st, JOURNEY, [h for h, _ in done], len(deals), wall, before, ("partners", "cams"))
    return [
        await harness.compare(
            st.client,
            "deal",
            n,
            real,
            BUSINESS_STEPS,
            notes=[f"{failed} deals not won; {st.smtp.counted} emails sent"],
            first=bracket,
        )
    ]
