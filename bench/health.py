"""Partner health evaluation rate: N partners (`registered`, with the generator's program), each
evaluated twice by the health journey's `evaluate` activity as the worker builds it (every
journey's signal reader from the registry, the score, its row): the first evaluation of a
partner records its score, the second finds nothing changed and writes nothing. Evaluations per
second of each pass: how many partners one worker can keep watched at a given
`health.evaluate_seconds`."""

from __future__ import annotations

import time
import uuid

from bench import harness
from bench.harness import Section, Stack


async def run(st: Stack, n: int) -> list[Section]:
    from core import registry
    from journeys.health.activities import HealthActivities
    from journeys.health.domain import EvaluateInput
    from store import repo

    partners = await harness.seed_partners(st, n)
    async with st.sessionmaker() as session:
        version = (await repo.current_policy(session)).version
    acts = HealthActivities(st.sessionmaker, registry.HEALTH_SIGNALS)
    section = Section("health", [("partners", str(n))])
    for label in ("first evaluation (records the score)", "again, unchanged (writes nothing)"):
        run_id = uuid.uuid4().hex[:8]

        async def one(p: dict, run_id: str = run_id):
            key = f"bench:{run_id}:{p['id']}"
            return await acts.evaluate(
                EvaluateInput(idempotency_key=key, partner_id=str(p["id"]), policy_version=version)
            )

        t0 = time.perf_counter()
        await harness.bounded(partners, one, concurrency=20)
        wall = time.perf_counter() - t0
        section.add(label, f"{n / wall:.0f} evaluations/s ({wall:.1f}s)")
    return [section]
