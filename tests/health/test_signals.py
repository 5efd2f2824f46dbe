"""Every journey's health signals (its manifest's `health_signals`), read through the registry on
PostgreSQL: nothing for a partner in good standing; each journey's reason once it holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from core import registry
from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.onboarding.models import PartnerMilestone
from journeys.qbr.models import QbrActionItem
from tests.health.factories import lapse
from tests.helpers.factories import make_partner
from tests.mdf.factories import make_fund
from tests.qbr.factories import make_deal


async def signals(sessionmaker, partner, policy: ProgramPolicy) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    async with sessionmaker() as session:
        for read in registry.HEALTH_SIGNALS:
            for s in await read(session, partner.id, datetime.now(UTC), policy):
                out.setdefault(s.kind, []).append(s.what)
    return out


async def test_each_journey_gives_its_signals(sessionmaker):
    assert len(registry.HEALTH_SIGNALS) == 5  # onboarding, deal, cert, mdf, qbr
    policy = ProgramPolicy()
    policy = policy.model_copy(update={"health": policy.health.model_copy(update={"mdf_unused_days": 3650})})
    partner = await make_partner(sessionmaker, tier=Tier.gold)
    assert await signals(sessionmaker, partner, policy.model_copy(update={"health": ProgramPolicy().health})) == {}

    now = datetime.now(UTC)
    await lapse(sessionmaker, partner, "Network Associate")
    await make_deal(sessionmaker, partner, amount_minor=100, state="won", at=now - timedelta(days=1))
    for _ in range(3):
        await make_deal(sessionmaker, partner, amount_minor=100, state="lost", at=now - timedelta(days=1))
    await make_fund(sessionmaker, partner, policy)
    async with sessionmaker() as session, session.begin():
        session.add(
            PartnerMilestone(
                partner_id=partner.id,
                key="portal_access",
                title="Log in to the partner portal",
                required=True,
                due_at=now - timedelta(days=3),
            )
        )
        session.add(
            QbrActionItem(
                partner_id=partner.id,
                period="2026-Q3",
                item_no=1,
                title="Joint plan",
                owner="partner",
                due=date.today() - timedelta(days=5),
            )
        )
    found = await signals(sessionmaker, partner, policy)
    assert found["cert_lapsed"][0].startswith("certification Network Associate lapsed on ")
    assert found["milestone_overdue"][0].startswith("onboarding milestone Log in to the partner portal overdue since")
    assert found["win_rate_low"] == ["win rate 25% over 90 days (goal 30%)"]
    assert found["qbr_action_overdue"][0].startswith("QBR action item 'Joint plan' (2026-Q3) overdue since")
    assert found["mdf_unused"][0].startswith("MDF ") and "unused, expires on" in found["mdf_unused"][0]
    assert "deal_velocity_low" not in found  # a partner enrolled today is not judged on its velocity yet
