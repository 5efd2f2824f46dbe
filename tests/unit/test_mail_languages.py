"""Every partner-facing email has a German variant (`<template>.de.{subject,txt,html}.j2`, the
sign-in email's convention) that uses exactly the English template's values, so the mail step can
send it to a partner user who reads German. The list of partner-facing templates is checked against
the journeys' own `notify(...)` calls to the partner or one of its people."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import meta

from activities.mail import Mailer, template_env
from journeys.health.domain import PORTAL_STEP, STEPS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PARTNER_FACING = {
    "cert": ["expiry_reminder", "grace", "lapsed", "renewed"],
    "deal": [
        "approved",
        "rejected",
        "won",
        "lost",
        "extension_granted",
        "extension_rejected",
        "expired",
        "expiry_reminder",
    ],
    "health": ["reengage"],
    "handover": ["introduction"],  # the platform's CAM handover (activities/templates/handover)
    "leads": ["offer", "offer_reminder", "withdrawn", "nudge"],
    "mdf": [
        "submitted",
        "returned",
        "approved",
        "claim_reminder",
        "claim_returned",
        "claim_approved",
        "paid",
        "rejected",
        "claim_denied",
        "expired",
        "funds_expiring",
        "funds_expired",
    ],
    "onboarding": ["welcome", "nudge", "activated", "at_risk"],
    "qbr": [
        "schedule_request",
        "scorecard",
        "invite",
        "pre_read",
        "action_reminder",
        "action_escalation",
        "tier_changed",
        "remediation",
        "recovered",
    ],
}
KINDS = ("subject", "txt", "html")
ENV = template_env()


def variables(name: str) -> set[str]:
    source = ENV.loader.get_source(ENV, name)[0]  # type: ignore[union-attr]
    return set(meta.find_undeclared_variables(ENV.parse(source)))


@pytest.mark.parametrize(
    ("journey", "template"), [(j, t) for j, templates in PARTNER_FACING.items() for t in templates]
)
def test_every_partner_facing_email_has_a_german_variant(journey, template):
    for kind in KINDS:
        english, german = f"{journey}/{template}.{kind}.j2", f"{journey}/{template}.de.{kind}.j2"
        assert german in ENV.list_templates(), f"journeys/{journey}/templates/mail: no {template}.de.{kind}.j2"
        assert variables(german) == variables(english), german
    html = ENV.loader.get_source(ENV, f"{journey}/{template}.de.html.j2")[0]  # type: ignore[union-attr]
    assert '{% extends "_layout.de.html.j2" %}' in html


def test_the_list_holds_every_email_the_journeys_send_to_partners():
    """A `notify("<template>", [... "partner" ...])` or to a person of the partner is in the list,
    and so is a state told with its email (`_tell_state(<Journey>State.<template>, [...])`, the
    template named after the state)."""
    call = re.compile(r'(?:notify|_tell_state)\(\s*(?:"(\w+)"|\w+State\.(\w+)),\s*\[([^\]]*)\]', re.S)
    found = set()
    for path in ROOT.glob("journeys/*/*.py"):
        for template, state, recipients in call.findall(path.read_text()):
            if '"partner"' in recipients or "person:" in recipients:
                found.add((path.parent.name, template or state))
    listed = {(j, t) for j, templates in PARTNER_FACING.items() for t in templates}
    assert len(found) > 20 and found <= listed, sorted(found - listed)


def test_a_german_layout_and_english_stays_the_default():
    assert "_layout.de.html.j2" in ENV.list_templates()
    no_german = [
        t
        for t in ENV.list_templates()
        if t.endswith(".de.subject.j2") and t.replace(".de.", ".") not in ENV.list_templates()
    ]
    assert no_german == []  # every variant has its English original


@pytest.mark.parametrize("kind", [*STEPS, PORTAL_STEP.kind])
def test_the_reengagement_email_gives_a_german_reader_the_next_step_in_german(kind):
    """The next step's text is composed in English (journeys/health/domain.py); the email names its
    kind, and the German variant words it in German (a run recorded before: the text as it was)."""
    mailer = Mailer(host="localhost", port=25, sender="program@vendor.test", env=ENV)
    english = PORTAL_STEP.text if kind == "portal" else STEPS[kind].format(what="certification X lapsed on 2027-03-02")
    context = {"partner_name": "Acme", "next_step": english, "step_kind": kind, "number": 1, "emails": 3}
    rendered = mailer.render("health", "reengage", context, "de")
    german_step = rendered.text.split("am meisten hilft:", 1)[1].split("(1 von 3", 1)[0].strip()
    assert german_step and german_step in rendered.html and english not in rendered.text + rendered.html
    assert not re.search(r"\b(your|the|before|Renew|Sign in|Register|Complete|Claim|Close|Ask)\b", german_step)
    assert english in mailer.render("health", "reengage", context, "en").text
    older = {k: v for k, v in context.items() if k != "step_kind"}
    assert english in mailer.render("health", "reengage", older, "de").text
