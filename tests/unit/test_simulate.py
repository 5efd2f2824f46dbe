"""The what-if simulator's pure parts: the sample plan, draft validation, caps, the report and its bars."""

from __future__ import annotations

import pytest

from domain.charts import pair_bars_svg
from domain.policy import ProgramPolicy
from worker.simulate import DraftError, Report, bench_shape, check_bounds, figures, plan, validate_draft

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
