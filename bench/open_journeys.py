"""Open journeys on one worker process: N journeys that stay open for months under the default
(production) policy, a third each: onboarding plans in progress, deals in their protection
window (auto-approved), certifications waiting for an expiry a year away. One `camlights worker`
process (a real subprocess, measured through /proc) runs them all.

1. Start them all (as the API starts them) and wait until each is at rest (its first steps
   written: the welcome and approval emails sent, the certification recorded).
2. The worker's RSS at rest.
3. For each sticky-cache size in `caches`: kill the worker (SIGKILL, as a crash), start a new
   one with `WORKER_MAX_CACHED_WORKFLOWS=<size>`, and query every journey (PROGRESS; a journey
   not in the cache is replayed from its history to answer). Time from the new process's start
   to the last answer (process start included), and its RSS after every journey was replayed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from temporalio.service import RPCError

from bench import harness, seed
from bench.cert import cert_input, cert_rows
from bench.deal import deal_input, deal_rows
from bench.harness import Section, Stack, log

SETTLE_TIMEOUT = 1800.0
QUERY_TIMEOUT = timedelta(seconds=30)
QUERY_ATTEMPTS = 5


async def counts(st: Stack) -> tuple[int, int, int]:
    async with st.sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "select (select count(*) from outbox where template = 'welcome' and status = 'sent'), "
                    "(select count(*) from outbox where template = 'approved' and status = 'sent'), "
                    "(select count(*) from audit_events where idempotency_key like 'cert-%:1:active')"
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def run(st: Stack, n: int, caches: tuple[int, ...] = (1000,)) -> list[Section]:
    from domain.journeys import PROGRESS
    from journeys.cert.domain import JOURNEY as CERT
    from journeys.deal.domain import JOURNEY as DEAL
    from journeys.onboarding.domain import JOURNEY as ONBOARDING
    from journeys.onboarding.domain import OnboardingInput

    third = max(1, n // 3)
    partners = await harness.seed_partners(st, third)
    deals = deal_rows(partners)
    certs = cert_rows(partners, datetime.now(UTC) + timedelta(days=365))
    await asyncio.to_thread(seed.write, st.settings.database_url, seed.Program(deals=deals, certifications=certs))
    tq = st.settings.task_queue
    starts = (
        [
            (
                ONBOARDING,
                p["id"],
                OnboardingInput(partner_id=str(p["id"]), partner_name=p["name"], coverage=harness.coverage(p)),
                "in_progress",
            )
            for p in partners
        ]
        + [(DEAL, d["id"], deal_input(d, p), "pending_approval") for d, p in zip(deals, partners, strict=True)]
        + [(CERT, c["id"], cert_input(c, p), "active") for c, p in zip(certs, partners, strict=True)]
    )
    total = len(starts)
    s = Section(f"open journeys on one worker ({total}: {third} onboarding, {third} deals, {third} certifications)")

    worker = harness.start_worker(st, {"WORKER_MAX_CACHED_WORKFLOWS": str(max(caches))})
    try:
        rss0 = None
        t0 = time.perf_counter()
        await harness.bounded(starts, lambda a: harness.launch(st.client, a[0], a[1], a[2], tq, a[3]), 100)
        started = time.perf_counter() - t0
        log(f"open journeys: {total} started in {started:.1f}s; waiting until each is at rest")
        rss0 = worker.rss_mib()
        while True:
            c = await counts(st)
            if min(c) >= third:
                break
            if time.perf_counter() - t0 > SETTLE_TIMEOUT:
                raise TimeoutError(f"journeys not at rest after {SETTLE_TIMEOUT:g}s: {c}")
            await asyncio.sleep(2)
        settled = time.perf_counter() - t0
        await asyncio.sleep(3)
        s.add("started (as the API starts)", f"{started:.1f}s  ({total / started:.0f}/s)")
        s.add("all at rest", f"{settled:.1f}s after the first start  ({total / settled:.1f} journeys/s)")
        s.add(
            "worker RSS at rest",
            f"{worker.rss_mib():.0f} MiB (cache {max(caches)}; {rss0:.0f} MiB before the journeys ran)",
        )
    finally:
        worker.stop(kill=True)

    wids = [f"{journey}-{entity}" for journey, entity, _, _ in starts]
    for cache in caches:
        t0 = time.perf_counter()
        worker = harness.start_worker(st, {"WORKER_MAX_CACHED_WORKFLOWS": str(cache)})
        try:
            first: list[float] = []
            retried: list[str] = []

            async def ask(wid: str, t0: float = t0, first: list[float] = first, retried: list[str] = retried) -> None:
                for attempt in range(QUERY_ATTEMPTS):
                    try:
                        await st.client.get_workflow_handle(wid).query(PROGRESS, rpc_timeout=QUERY_TIMEOUT)
                        break
                    except RPCError:  # not answered in time (the worker still replaying others): ask again
                        if attempt == QUERY_ATTEMPTS - 1:
                            raise
                        retried.append(wid)
                if not first:
                    first.append(time.perf_counter() - t0)

            try:
                await harness.bounded(wids, ask, 20)
            except RPCError as err:  # keep what was measured: the report says what failed
                s.add(f"restart, cache {cache}", f"gave up after {time.perf_counter() - t0:.0f}s: {err}")
                continue
            took = time.perf_counter() - t0
            s.add(
                f"restart, cache {cache}",
                f"first answer {first[0]:.1f}s, all {total} answered {took:.1f}s ({total / took:.0f}/s, "
                f"{len(retried)} queries asked again); RSS after {worker.rss_mib():.0f} MiB",
            )
        finally:
            worker.stop(kill=True)
    s.add("target", "RSS < 1 GiB with every journey open")
    return [s]
