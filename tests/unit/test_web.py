"""Pure pieces of the CAM workspace: sign-in links (domain/signin.py), the policy editor's form
(api/web/policy_form.py), deadlines in words and the CSV export's cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.web import policy_form
from api.web.items import relative, urgency
from api.web.portfolio import BASE, Filters, Portfolio, to_csv
from domain.charts import trend_svg
from domain.links import LinkClaims, LinkExpired, LinkInvalid, make_token
from domain.policy import ProgramPolicy
from domain.signin import PORTAL_SALT, make_sign_in_token, new_claims, read_sign_in_token

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret"
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def test_a_sign_in_link_reads_back_until_it_expires():
    claims = new_claims("casey@vendor.test", timedelta(minutes=15), now=NOW)
    token = make_sign_in_token(SECRET, claims)
    assert read_sign_in_token(SECRET, token, now=NOW + timedelta(minutes=14)) == claims
    with pytest.raises(LinkExpired, match="ask for a new one"):
        read_sign_in_token(SECRET, token, now=NOW + timedelta(minutes=15))
    assert new_claims("casey@vendor.test", timedelta(minutes=15), now=NOW).jti != claims.jti  # each link its own id


def test_a_forged_or_foreign_token_is_not_a_sign_in_link():
    token = make_sign_in_token(SECRET, new_claims("casey@vendor.test", timedelta(minutes=15), now=NOW))
    with pytest.raises(LinkInvalid, match="signature"):
        read_sign_in_token("another-secret", token, now=NOW)
    with pytest.raises(LinkInvalid, match="signature"):
        # a character well inside the signature (the last ones may be base64 padding bits that decode the same)
        read_sign_in_token(SECRET, token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:], now=NOW)
    decision = make_token(SECRET, LinkClaims("D-1", "approve", "cam:7", "j" * 32, NOW + timedelta(days=1)))
    with pytest.raises(LinkInvalid):  # a decision link never signs anyone in (another salt)
        read_sign_in_token(SECRET, decision, now=NOW)


def test_a_workspace_link_is_no_partner_portal_link_nor_the_reverse():
    claims = new_claims("owner@contoso.test", timedelta(minutes=15), now=NOW)
    portal = make_sign_in_token(SECRET, claims, PORTAL_SALT)
    assert read_sign_in_token(SECRET, portal, now=NOW, salt=PORTAL_SALT) == claims
    with pytest.raises(LinkInvalid, match="signature"):
        read_sign_in_token(SECRET, portal, now=NOW)
    with pytest.raises(LinkInvalid, match="signature"):
        read_sign_in_token(SECRET, make_sign_in_token(SECRET, claims), now=NOW, salt=PORTAL_SALT)


def current() -> dict:
    return ProgramPolicy().model_dump(mode="json")


def form_of(policy: dict) -> dict[str, str]:
    return {f.name: f.value for f in policy_form.flatten(policy)}


def test_the_policy_form_reads_back_to_the_same_policy():
    policy = current()
    fields = policy_form.flatten(policy)
    names = [f.name for f in fields]
    assert "deal.tiers.gold.protection_days" in names and "onboarding.milestones.0.title" in names
    assert {f.kind for f in fields if f.name == "cert.reminder_days"} == {"list"}
    assert {f.kind for f in fields if f.name == "tiers.gold.has_cam"} == {"bool"}
    checked = policy_form.check(policy, form_of(policy))
    assert checked.errors == {} and checked.policy == ProgramPolicy()
    assert policy_form.diff(policy, checked.policy.model_dump(mode="json")) == []


def test_the_policy_form_names_each_wrong_field():
    policy = current()
    form = form_of(policy) | {"deal.approval_sla_days": "soon", "cert.reminder_days": "60, -3", "deal.currency": "usd"}
    checked = policy_form.check(policy, form)
    assert checked.policy is None
    assert set(checked.errors) == {"deal.approval_sla_days", "cert.reminder_days", "deal.currency"}
    assert "number" in checked.errors["deal.approval_sla_days"]
    # A rule across fields goes to the field its message names.
    checked = policy_form.check(policy, form_of(policy) | {"deal.approval_sla_days": "9"})
    assert list(checked.errors) == ["deal.escalation_days"]


def test_the_policy_diff_lists_what_changed():
    policy = current()
    checked = policy_form.check(policy, form_of(policy) | {"deal.approval_sla_days": "3", "cert.reminder_days": "45,7"})
    assert checked.policy is not None
    assert policy_form.diff(policy, checked.policy.model_dump(mode="json")) == [
        ("deal.approval_sla_days", "2", "3"),
        ("cert.reminder_days", "60, 30, 7", "45, 7"),
    ]


def test_deadlines_in_words():
    assert relative(NOW + timedelta(hours=5, minutes=10), NOW, "SLA ends") == "SLA ends in 5 h"
    assert relative(NOW - timedelta(days=3), NOW, "was due") == "was due 3 d ago"
    assert relative(None, NOW, "due") == ""
    assert [urgency(NOW - timedelta(seconds=1), NOW), urgency(NOW + timedelta(hours=3), NOW)] == ["late", "soon"]
    assert urgency(NOW + timedelta(days=3), NOW) == "later"


def test_csv_cells_never_start_a_formula():
    data = Portfolio(columns=BASE[:2], rows=[{"id": "1", "name": '=HYPERLINK("x")', "tier": "gold"}], filters=Filters())
    assert to_csv(data).splitlines() == ["id,Partner,Tier", '1,"\'=HYPERLINK(""x"")",gold']


def test_the_trend_chart_is_plain_svg_with_escaped_labels():
    svg = str(trend_svg([("2026-Q1", 40), ("<b>Q2</b>", 100), ("2026-Q3", 150)], low=0, high=100, height=120))
    assert svg.startswith('<svg class="trend" role="img"') and "<script" not in svg and "style=" not in svg
    assert "&lt;b&gt;Q2&lt;/b&gt;" in svg and "<b>" not in svg
    assert 'points="28.0,63.6 180.0,12.0 332.0,12.0"' in svg  # 40 of 100, then the top (150 is clamped)
    assert trend_svg([]) == ""
