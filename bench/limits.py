"""The failure limits shared by every API process (api/ratelimit.py), measured: the cost of one
check (the upsert a failure costs, the read a sign-in request costs) sequentially and under
concurrency (distinct clients, one hot client), what a valid request pays (the rows it writes to
`rate_limits`: none), and one budget across two real API processes (uvicorn) with Retry-After.

    .venv/bin/python -m bench --only limits --n 2000
"""

from __future__ import annotations

import contextlib
import time

from sqlalchemy import text

from api.ratelimit import FailureLimiter, blocked
from bench import harness
from bench.harness import Section, latency, log

LIMIT = 20


async def _timed(calls) -> list[float]:
    out = []
    for call in calls:
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


async def _counted(st: harness.Stack) -> tuple[int, int]:
    """Rows of `rate_limits` and the failures they count."""
    async with st.engine.connect() as conn:
        rows, hits = (await conn.execute(text("select count(*), coalesce(sum(hits), 0) from rate_limits"))).one()
    return int(rows), int(hits)


async def run(st: harness.Stack, n: int) -> list[Section]:
    engine = st.engine.execution_options(isolation_level="AUTOCOMMIT")  # as the API uses it
    limiter = FailureLimiter("bench", LIMIT)
    n = max(200, min(n, 5000))
    s = Section("limits: shared failure limits (PostgreSQL, one statement per check)")
    for _ in range(20):  # warm the pool
        await limiter.fail(engine, "warm-up")

    fail_new = await _timed([lambda i=i: limiter.fail(engine, f"198.51.100.{i}") for i in range(n)])
    s.add("a failure counted, new client (insert)", latency(fail_new))
    fail_same = await _timed([lambda: limiter.fail(engine, "203.0.113.7") for _ in range(n)])
    s.add("a failure counted, same client (update)", latency(fail_same))
    peek = await _timed(
        [lambda i=i: blocked(engine, [(limiter, f"a{i}@x.test"), (limiter, "203.0.113.7")]) for i in range(n)]
    )
    s.add("a sign-in request's address check (read)", latency(peek))

    for label, key in (("50 clients at once, distinct", None), ("50 at once, one hot client", "hot")):
        t0 = time.perf_counter()
        await harness.bounded(range(n), lambda i, key=key: limiter.fail(engine, key or f"c{i}"), 50)
        wall = time.perf_counter() - t0
        s.add(f"failures/s, {label}", f"{n / wall:.0f}   ({n} in {wall:.2f}s)")

    log("  two API processes")
    env = {"AUTH_FAILURES_PER_MINUTE": str(LIMIT)}
    apis = [harness.start_api(st, env, name=f"api-{i}") for i in range(2)]
    try:
        ops = await harness.api_key(st, "ops")
        async with _clients(apis) as (a, b):
            for http in (a, b):
                await http.get("/policy", headers=ops)  # warm
            before = await _counted(st)
            valid = await _timed([lambda http=(a, b)[i % 2]: http.get("/policy", headers=ops) for i in range(n)])
            after = await _counted(st)
            s.add("valid key, GET /policy over both APIs", latency(valid))
            s.add("rate_limits rows and failures before / after them", f"{before} / {after} (unchanged: none written)")
            statuses = []
            for i in range(LIMIT + 2):
                r = await (a, b)[i % 2].get("/policy", headers={"Authorization": f"Bearer cl_bad{i}"})
                statuses.append(r.status_code)
            first_429 = statuses.index(429) + 1 if 429 in statuses else None
            s.add(
                f"bad keys alternating the two APIs (limit {LIMIT})",
                f"429 from attempt {first_429}; Retry-After {r.headers.get('Retry-After')} s",
            )
            still = await b.get("/policy", headers=ops)
            s.add("a valid key from that spent client", f"{still.status_code}")
            bad = await _timed(
                [
                    lambda http=(a, b)[i % 2]: http.get("/policy", headers={"Authorization": "Bearer x"})
                    for i in range(min(n, 500))
                ]
            )
            s.add("a bad key past the limit (lookup + upsert, 429)", latency(bad))
    finally:
        for api in apis:
            api.stop()
    return [s]


@contextlib.asynccontextmanager
async def _clients(apis):
    import httpx

    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{apis[0].port}", timeout=30) as a,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{apis[1].port}", timeout=30) as b,
    ):
        yield a, b
