"""The what-if simulator's pure parts: the sample plan, draft validation, caps, the report and its bars."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.charts import pair_bars_svg
from domain.policy import ProgramPolicy
from worker.simulate import (
    ANSWER_MARGIN,
    LEAD_TICK,
    DraftError,
    LeadPlan,
    Plan,
    Report,
    World,
    _lead_steps,
    bench_shape,
    check_bounds,
    figures,
    plan,
    validate_draft,
)

pytestmark = pytest.mark.unit


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another():
    a, b, c = (plan(bench_shape(), 30, 12, s) for s in (4, 4, 5))
    assert a.partners == b.partners and a.cams == b.cams
    assert a.partners != c.partners
    assert len(a.partners) == 30 and a.cams >= 1
    assert all(d.day < 12 * 30 for p in a.partners for d in p.deals)


def test_a_draft_is_validated_as_put_policy_validates_it():
    assert validate_draft({}) == ProgramPolicy.model_validate({})
    with pytest.raises(DraftError, match=r"^deal\.escalation_days|^deal: "):
        validate_draft({"deal": {"approval_sla_days": 5, "escalation_days": 4}})
    with pytest.raises(DraftError, match=r"^policy: |^ "):
        validate_draft([])
    with pytest.raises(DraftError, match="months"):
        check_bounds(1, 0, ProgramPolicy())


def test_the_report_marks_what_differs_and_states_its_sample():
    p = plan(bench_shape(), 4, 1, 9)
    counts = dict.fromkeys(
        (
            "cam_decisions",
            "escalations",
            "emails",
            "deals_auto_approved",
            "deals_auto_approved_minor",
            "onboarding_active",
            "onboarding_at_risk",
            "certifications_lapsed",
            "mdf_requested",
            "mdf_requested_minor",
            "mdf_claimed",
            "mdf_claimed_minor",
            "mdf_paid_minor",
            "mdf_expired_unclaimed",
            "mdf_expired_unclaimed_minor",
            "mdf_expired_minor",
            "qbr_meetings",
            "leads",
            "leads_unplaced",
        ),
        0,
    )
    current, draft = figures(counts, p), figures({**counts, "escalations": 3, "emails": 8}, p)
    report = Report(4, p.cams, 1, 9, "bench generator", {"gold": 4}, current, draft, {}, 1.0)
    text = report.table()
    assert "4 partners" in text and "seed 9" in text and "bench generator" in text
    assert [line for line in text.splitlines() if "<--" in line][0].lstrip().startswith("escalations per CAM")
    assert report.as_json()["differences"] == ["escalations_per_cam_week", "emails_per_partner_month"]


def test_the_bars_highlight_a_draft_that_differs():
    same = str(pair_bars_svg("emails", 2, 2))
    assert "#c28a00" not in same and "current 2, draft 2" in same
    differs = str(pair_bars_svg("escalations <per week>", 1.5, 3))
    assert "#c28a00" in differs and "&lt;per week&gt;" in differs
    assert 'width="0.0"' in str(pair_bars_svg("none", 0, 0))


@pytest.mark.parametrize(
    ("left", "answered"),
    [(ANSWER_MARGIN - 0.001, False), (ANSWER_MARGIN, False), (ANSWER_MARGIN + 0.001, True)],
)
async def test_a_partner_answers_an_offer_only_while_more_than_the_margin_is_left(left, answered):
    """The partner's look at its offers (`_lead_steps`): an offer whose answer falls due at a look
    is accepted there only while more than `ANSWER_MARGIN` policy days are left of it; at the bar
    and inside it the offer is left to expire (an answer and an expiry at one instant raced)."""
    shape = bench_shape()
    shape.lead_accept, shape.lead_decline = 1.0, 0.0
    program = Plan(partners=[], cams=1, months=1, seed=3, shape=shape, leads=[LeadPlan(day=1.0, category="network")])
    policy = ProgramPolicy()
    _, after = program.lead_answer(0, 0)
    due = next(1.0 + k * LEAD_TICK for k in range(1, 100) if 1.0 + k * LEAD_TICK >= 1.0 + after)
    start = datetime(2027, 1, 4, tzinfo=UTC)
    calls: list[tuple[str, str]] = []

    async def call(method: str, path: str, **_: object) -> dict:
        calls.append((method, path))
        return {"id": "lead-0"} if path == "/leads" else {"state": "offered"}

    async def live(_: list[str]) -> list[tuple[str, str, datetime, datetime]]:
        return [("lead-0", "p-0", start + policy.days(1.0), start + policy.days(due) + policy.days(left))]

    async def key(_: str) -> str:
        return "p-0"

    async def routed(_: str) -> None:
        return None

    world = World(start=start, call=call, partner_key=key, live_offers=live, routed=routed, partner_ids={0: "p-0"})
    for step in sorted(_lead_steps(program, policy, world, due + 0.1), key=lambda s: (s.day, s.order)):
        await step.action()
    assert (("POST", "/leads/lead-0/accept") in calls) is answered, calls


def test_a_run_goes_on_libuvs_event_loop():
    """A simulation's run in its own process (`_child_main`) goes through `_run`: on uvloop where it
    is installed (a dependency on every platform but Windows), 13-17 % less CPU than asyncio's.
    `camlights worker` and the benchmarks run through the same `core.loop.run`."""
    import asyncio

    from worker.simulate import _run

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert _run(loop_module()).startswith("uvloop")
