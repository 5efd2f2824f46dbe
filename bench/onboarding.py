"""Onboarding journey cost: N `registered` partners enrolled (`onboarding-{id}` started as the
API starts it), every required milestone signalled at once (the journey keeps signals in its
inbox and applies them once its plan is written), every result awaited; then the bare-Temporal
baseline of the same shape. One-hour policy days: nothing falls due during the run.

Business steps of one journey: write the plan, the welcome email, three milestones, the
partner's new status, the activation email (7)."""

from __future__ import annotations

import uuid

from bench import harness
from bench.harness import Section, Stack

BUSINESS_STEPS = 7


async def run(st: Stack, n: int) -> list[Section]:
    from domain.enums import Tier
    from journeys.onboarding.domain import JOURNEY, MARK_MILESTONE, MilestoneDone, OnboardingInput, OnboardingState
    from worker.main import build_worker

    assert st.settings is not None
    policy = harness.bench_policy()
    required = [m.key for m in policy.onboarding.required(Tier.registered)]
    before = await harness.db_snapshot(st)
    partners = await harness.seed_partners(st, n + 1)
    task_queue = f"bench-onboarding-{uuid.uuid4().hex[:8]}"
    version = await harness.policy_version(st)

    async def journey(p: dict):
        inp = OnboardingInput(
            partner_id=str(p["id"]), partner_name=p["name"], coverage=harness.coverage(p), policy_version=version
        )
        handle = await harness.launch(st.client, JOURNEY, p["id"], inp, task_queue, OnboardingState.in_progress.value)
        for key in required:
            await handle.signal(MARK_MILESTONE, MilestoneDone(key=key, by=f"partner:{p['id']}"))
        result = await handle.result()
        return handle, result["state"]

    # the baseline just before the journeys, and again just after them (compare)
    bracket = await harness.baseline_first(st.client, harness.Shape(BUSINESS_STEPS, signals=len(required)), n)
    st.smtp.clear()
    async with build_worker(st.client, st.settings, st.sessionmaker, task_queue):
        wall, done, cpu = await harness.drive("onboarding", partners, journey)
    failed = sum(1 for _, state in done if state != OnboardingState.activated)
    real = {"wall": wall, "cpu": cpu, **await harness.history_stats([h for h, _ in done[:50]])}
    emails = st.smtp.counted
    await harness.measure_costs(st, JOURNEY, [h for h, _ in done], len(partners), wall, before, ("cams",))
    return [
        await harness.compare(
            st.client,
            "onboarding",
            n,
            real,
            BUSINESS_STEPS,
            notes=[f"{failed} journeys not activated; {emails} emails sent"],
            first=bracket,
        )
    ]
