"""Decisions under load: in-policy deals registered through the real API (uvicorn, one process)
at a steady rate, auto-approved by their journey on one worker process, and the approval email
received by the SMTP sink. For each deal: the time from sending `POST /deals` to the arrival of
its `approved` email (the whole path: API, conflict check under its lock, start, policy read,
approval recorded, outbox, SMTP), and the API's own answer time. Open-loop: a registration is
sent every 1/rate s whatever the answers; bounded by `seconds`, then up to 60 s for the emails.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import harness
from bench.harness import Section, Stack, latency, log, percentile

TARGET_P95 = 1.0
DRAIN_SECONDS = 60.0


async def run(st: Stack, rates: tuple[float, ...] = (20.0,), seconds: float = 30.0) -> list[Section]:
    """One API process and one worker process for every rate, one after the other (each rate
    starts once the previous one's emails arrived)."""
    import httpx

    partners = await harness.seed_partners(st, min(int(max(rates) * seconds), 500))
    ops = await harness.api_key(st, "ops")
    api = harness.start_api(st)
    worker = harness.start_worker(st)
    close = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    out = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as http:

            def body(i: int, slug: str) -> dict:
                return {
                    "partner_id": str(partners[i % len(partners)]["id"]),
                    "customer_name": f"Customer {slug}",
                    "customer_domain": f"{slug}.example",
                    "product_category": "network",
                    "amount": "4800.00",
                    "currency": "USD",
                    "expected_close_date": close,
                    "stage": "qualification",
                }

            r = await http.post("/deals", json=body(0, "warm-up"), headers=ops)
            assert r.status_code == 201, r.text
            # untimed: until the worker process is up and the warm-up deal's approval email arrived
            t0, warm = time.perf_counter(), f"deal-{r.json()['id']}:notify:approved"
            while not any(m["X-CAMLights-Key"] == warm for m in st.smtp.messages):
                if time.perf_counter() - t0 > DRAIN_SECONDS:
                    raise TimeoutError("the warm-up deal was not approved: is the worker running?")
                await asyncio.sleep(0.2)
            log(f"decisions: warm-up deal approved and emailed {time.perf_counter() - t0:.1f}s after registration")
            for rate in rates:
                out.append(await steady(st, http, ops, body, rate, seconds))
    finally:
        api.stop()
        worker.stop()
    return out


async def steady(st: Stack, http, ops: dict[str, str], body, rate: float, seconds: float) -> Section:
    total = int(rate * seconds)
    st.smtp.clear()
    sent: dict[str, float] = {}
    answers: list[float] = []
    errors: list[str] = []

    async def register(i: int) -> None:
        at, t0 = time.time(), time.perf_counter()
        r = await http.post("/deals", json=body(i, uuid.uuid4().hex[:10]), headers=ops)
        answers.append(time.perf_counter() - t0)
        if r.status_code != 201:
            errors.append(f"{r.status_code} {r.text[:120]}")
            return
        sent[f"deal-{r.json()['id']}:notify:approved"] = at

    log(f"decisions: {total} registrations at {rate:g}/s")
    t0 = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(register(i)))
    await asyncio.gather(*tasks)
    offered = time.perf_counter() - t0
    ends = time.perf_counter() + DRAIN_SECONDS
    while time.perf_counter() < ends:
        got = {m["X-CAMLights-Key"] for m in st.smtp.messages if m["X-CAMLights-Template"] == "approved"}
        if set(sent) <= got:
            break
        await asyncio.sleep(0.5)
    arrived = {}
    for at, m in st.smtp.received:
        key = m["X-CAMLights-Key"]
        if key in sent and key not in arrived:
            arrived[key] = at - sent[key]
    lat = list(arrived.values())
    s = Section(f"decisions: in-policy deal registered -> approved -> partner emailed, {rate:g}/s for {seconds:g}s")
    s.add("registrations sent", f"{total} in {offered:.1f}s ({total / offered:.1f}/s offered); {len(errors)} refused")
    s.add("POST /deals answered", latency(answers))
    if lat:
        p95 = percentile(lat, 95)
        s.add("registered -> emailed", f"{latency(lat)}  {'MISS' if p95 > TARGET_P95 else 'ok'} (target p95 < 1 s)")
    s.add("approval emails missing", f"{len(sent) - len(lat)} after {DRAIN_SECONDS:g}s")
    if errors:
        s.add("first refusal", errors[0])
    return s
