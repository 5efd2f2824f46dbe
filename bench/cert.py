"""Certification renewal journey cost: N certifications of `registered` partners expiring in
a year of one-hour policy days (`cert-{id}` started as the API starts it), each renewed at once
through the `renew` update (answered once the renewal is recorded; the journey then continues
as new for the next period, which waits for its expiry); every update's answer awaited; then
the bare-Temporal baseline of the same shape (its update answered once its activities ran).

Business steps of one period: record the certification active, record the renewal, the
renewal email (3)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from bench import harness, seed
from bench.harness import Section, Stack

BUSINESS_STEPS = 3


def cert_rows(partners: list[dict], expires_at: datetime) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "id": uuid.uuid4(),
            "partner_id": p["id"],
            "person_name": f"Person {i}",
            "person_email": f"person{i}@{p['domain']}",
            "track": "Network Associate",
            "product_category": seed.CATEGORIES[i % len(seed.CATEGORIES)],
            "issued_at": now,
            "expires_at": expires_at,
            "state": "active",
            "restricted": False,
            "period": 1,
            "created_by": "ops:bench",
            "created_at": now,
            "updated_at": now,
        }
        for i, p in enumerate(partners)
    ]


def cert_input(cert: dict, partner: dict, policy_version: int | None = None):
    from journeys.cert.domain import CertInput

    return CertInput(
        cert_id=str(cert["id"]),
        partner_id=str(partner["id"]),
        partner_name=partner["name"],
        coverage=harness.coverage(partner),
        person_name=cert["person_name"],
        person_email=cert["person_email"],
        track=cert["track"],
        product_category=cert["product_category"],
        expires_at=cert["expires_at"],
        policy_version=policy_version,
    )


async def run(st: Stack, n: int) -> list[Section]:
    from journeys.cert.domain import JOURNEY, RENEW, Renewal, RenewalResult
    from worker.main import build_worker

    policy = harness.bench_policy()
    before = await harness.db_snapshot(st)
    partners = await harness.seed_partners(st, n + 1)
    expires = datetime.now(UTC) + policy.days(365)
    certs = cert_rows(partners, expires)
    await asyncio.to_thread(seed.write, st.settings.database_url, seed.Program(certifications=certs))
    task_queue = f"bench-cert-{uuid.uuid4().hex[:8]}"
    version = await harness.policy_version(st)

    async def journey(pair):
        cert, partner = pair
        handle = await harness.launch(
            st.client, JOURNEY, cert["id"], cert_input(cert, partner, version), task_queue, "active"
        )
        renewal = Renewal(expires_at=expires + timedelta(days=365), by="ops:bench")
        result = await handle.execute_update(RENEW, renewal, result_type=RenewalResult)
        return handle, result.period

    # the baseline just before the journeys, and again just after them (compare)
    bracket = await harness.baseline_first(st.client, harness.Shape(BUSINESS_STEPS, updates=1), n)
    st.smtp.clear()
    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        wall, done, cpu = await harness.drive("cert", list(zip(certs, partners, strict=True)), journey)
        failed = sum(1 for _, period in done if period != 2)
        # the first run of each (the next period's run continues from it)
        first = []
        for h, _ in done:
            info = (await h.describe()).raw_description.workflow_execution_info
            first.append(st.client.get_workflow_handle(h.id, run_id=info.first_run_id))
        real = {"wall": wall, "cpu": cpu, **await harness.history_stats(first[:50])}
        await harness.measure_costs(st, JOURNEY, first, len(certs), wall, before, ("partners", "cams"))
        for h, _ in done:
            await h.terminate("benchmark over")
    return [
        await harness.compare(
            st.client,
            "cert",
            n,
            real,
            BUSINESS_STEPS,
            notes=[f"{failed} renewals not answered with period 2; {st.smtp.counted} emails sent"],
            first=bracket,
        )
    ]
