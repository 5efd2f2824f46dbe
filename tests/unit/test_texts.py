# ruff: noqa: E501  (texts pinned character for character: long literals)
"""The texts ops read (pure rules, no server): each journey's static summary and details in the
Temporal Web UI, and the QBR pre-read's trend chart, pinned character for character."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.charts import trend_svg
from domain.enums import Tier
from domain.journeys import Coverage
from journeys.cert import domain as cert
from journeys.deal import domain as deal
from journeys.mdf import domain as mdf
from journeys.onboarding import domain as onboarding
from journeys.qbr import domain as qbr

GOLD = Coverage(tier=Tier.gold, cam_id="c-7")
ALONE = Coverage(tier=Tier.registered, cam_id=None)
AT = datetime(2027, 3, 31, 23, 5, tzinfo=UTC)

DEAL = dict(
    deal_id="d-1",
    partner_id="p-1",
    partner_name="Contoso",
    coverage=GOLD,
    customer_name="Globex",
    product_category="network",
    amount_minor=4_800_012,
    currency="USD",
    stage="proposal",
    state="pending_approval",
)

pytestmark = pytest.mark.unit

CASES = [
    ("deal", lambda: deal.describe(deal.DealInput(**DEAL))),
    (
        "deal held in conflict",
        lambda: deal.describe(
            deal.DealInput(
                **{
                    **DEAL,
                    "coverage": ALONE,
                    "state": "conflict_review",
                    "conflict_with": "d-0",
                    "hold_reason": "lapsed certification",
                    "policy_version": 3,
                }
            )
        ),
    ),
    (
        "cert",
        lambda: cert.describe(
            cert.CertInput(
                cert_id="x-1",
                partner_id="p-1",
                partner_name="Contoso",
                coverage=GOLD,
                person_name="Pat",
                person_email="pat@c.test",
                track="Network Associate",
                product_category="network",
                expires_at=AT,
                period=2,
                policy_version=4,
            )
        ),
    ),
    (
        "onboarding",
        lambda: onboarding.describe(
            onboarding.OnboardingInput(partner_id="p-1", partner_name="Contoso", coverage=GOLD)
        ),
    ),
    (
        "onboarding alone",
        lambda: onboarding.describe(
            onboarding.OnboardingInput(partner_id="p-1", partner_name="Contoso", coverage=ALONE, policy_version=2)
        ),
    ),
    (
        "qbr",
        lambda: qbr.describe(qbr.QbrInput(partner_id="p-1", partner_name="Contoso", coverage=GOLD, period="2027-Q1")),
    ),
    (
        "qbr in a cycle",
        lambda: qbr.describe(
            qbr.QbrInput(
                partner_id="p-1",
                partner_name="Contoso",
                coverage=ALONE,
                period="2027-Q1",
                cycle_id="qbr-cycle-2027-Q1",
                policy_version=5,
            )
        ),
    ),
    (
        "mdf fund",
        lambda: mdf.describe(
            {
                "fund_id": "f-1",
                "partner_id": "p-1",
                "partner_name": "Contoso",
                "coverage": GOLD,
                "period": "2027-Q1",
                "currency": "USD",
                "expires_at": AT,
            }
        ),
    ),
    (
        "mdf request",
        lambda: mdf.describe(
            {
                "request_id": "r-1",
                "partner_id": "p-1",
                "partner_name": "Contoso",
                "coverage": GOLD,
                "fund_id": "f-1",
                "period": "2027-Q1",
                "activity_type": "webinar",
                "title": "Launch",
                "planned_start": date(2027, 2, 1),
                "planned_end": date(2027, 2, 3),
                "amount_minor": 108_000,
                "currency": "USD",
                "requested_amount_minor": 100_000,
                "requested_currency": "EUR",
                "exchange_rate": "1.08",
                "partner_share_percent": 50,
            }
        ),
    ),
    (
        "mdf request alone",
        lambda: mdf.describe(
            {
                "request_id": "r-1",
                "partner_id": "p-1",
                "partner_name": "Contoso",
                "coverage": ALONE,
                "fund_id": "f-1",
                "period": "2027-Q1",
                "activity_type": "webinar",
                "title": "Launch",
                "planned_start": date(2027, 2, 1),
                "planned_end": date(2027, 2, 3),
                "amount_minor": 100_000,
                "currency": "USD",
                "requested_amount_minor": 100_000,
                "requested_currency": "USD",
                "partner_share_percent": 50,
                "policy_version": 6,
            }
        ),
    ),
    ("trend svg", lambda: trend_svg([("2026-Q3", 40.0), ("2026-Q4", 55.5), ("2027-Q1", 100.0)], form="email")),
    ("trend svg of one point", lambda: trend_svg([("2027-Q1", 0.0)], form="email", width=200, height=60)),
    ("trend svg of none", lambda: trend_svg([], form="email")),
]

EXPECTED = {
    "deal": (
        "Deal: Globex — network, USD 48,000.12 — Contoso (gold, CAM c-7)",
        "**Deal** d-1  \n**Partner** p-1  \n**Registered as** pending_approval  \n**Policy version** current at start",
    ),
    "deal held in conflict": (
        "Deal: Globex — network, USD 48,000.12 — Contoso (registered, no CAM)",
        "**Deal** d-1  \n**Partner** p-1  \n**Registered as** conflict_review  \n**Conflict with** deal d-0  \n**Held** lapsed certification  \n**Policy version** 3",
    ),
    "cert": (
        "Certification: Network Associate (network) — Pat, Contoso (gold) — expires 2027-03-31",
        "**Certification** x-1  \n**Partner** p-1  \n**Period** 2  \n**Policy version** 4",
    ),
    "onboarding": ("Onboarding: Contoso (gold, CAM c-7)", "**Partner** p-1  \n**Policy version** current at start"),
    "onboarding alone": ("Onboarding: Contoso (registered, no CAM)", "**Partner** p-1  \n**Policy version** 2"),
    "qbr": (
        "QBR 2027-Q1: Contoso (gold, CAM c-7)",
        "**Partner** p-1  \n**Period** 2027-Q1  \n**Cycle** started alone  \n**Policy version** current at start",
    ),
    "qbr in a cycle": (
        "QBR 2027-Q1: Contoso (registered, no CAM)",
        "**Partner** p-1  \n**Period** 2027-Q1  \n**Cycle** qbr-cycle-2027-Q1  \n**Policy version** 5",
    ),
    "mdf fund": (
        "MDF fund 2027-Q1 — Contoso (gold)",
        "**Fund** f-1  \n**Partner** p-1  \n**Expires** 2027-03-31 23:05 UTC",
    ),
    "mdf request": (
        "MDF: Launch (webinar), EUR 1,000.00 — Contoso (gold, CAM c-7)",
        "**Request** r-1  \n**Partner** p-1  \n**Fund** 2027-Q1  \n**Dates** 2027-02-01 to 2027-02-03  \n**Reserved** USD 1,080.00 (rate 1.08)  \n**Policy version** current at start",
    ),
    "mdf request alone": (
        "MDF: Launch (webinar), USD 1,000.00 — Contoso (registered, no CAM)",
        "**Request** r-1  \n**Partner** p-1  \n**Fund** 2027-Q1  \n**Dates** 2027-02-01 to 2027-02-03  \n**Reserved** USD 1,000.00  \n**Policy version** 6",
    ),
    "trend svg": '<svg xmlns="http://www.w3.org/2000/svg" width="360" height="105" role="img" aria-label="score trend"><polyline points="0.0,58.0 160.0,45.6 320.0,10.0" fill="none" stroke="#c28a00" stroke-width="2"/><circle cx="0.0" cy="58.0" r="3" fill="#c28a00"/><circle cx="160.0" cy="45.6" r="3" fill="#c28a00"/><circle cx="320.0" cy="10.0" r="3" fill="#c28a00"/><text x="0.0" y="100" font-size="9">2026-Q3</text><text x="160.0" y="100" font-size="9">2026-Q4</text><text x="320.0" y="100" font-size="9">2027-Q1</text></svg>',
    "trend svg of one point": '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="65" role="img" aria-label="score trend"><polyline points="0.0,50.0" fill="none" stroke="#c28a00" stroke-width="2"/><circle cx="0.0" cy="50.0" r="3" fill="#c28a00"/><text x="0.0" y="60" font-size="9">2027-Q1</text></svg>',
    "trend svg of none": "",
}


@pytest.mark.parametrize(("name", "make"), CASES, ids=[name for name, _ in CASES])
def test_text(name, make):
    assert make() == EXPECTED[name]
