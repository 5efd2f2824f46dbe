"""Program figures: the active and dark partner rates against their targets and the median time
to first deal, exact at the bars (pure rule), and through `GET /program/figures` on real rows
(ops only; a CAM is refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from domain.enums import Role, Tier
from journeys.deal.models import Deal
from journeys.health.contract import HealthPolicy
from journeys.health.domain import PartnerFacts, program_figures
from store.models import Partner
from tests.deal.factories import make_deal
from tests.health.factories import acted
from tests.helpers.api import new_key
from tests.helpers.factories import make_partner

NOW = datetime(2027, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = HealthPolicy(dark_days=30, velocity_days=90, dark_rate_target=0.25, active_rate_target=0.5)


def facts(enrolled: float, active: float, first: float | None = None, last: float | None = None) -> PartnerFacts:
    """Days ago."""
    return PartnerFacts(
        enrolled_at=NOW - enrolled * DAY,
        last_active=NOW - active * DAY,
        first_deal_at=None if first is None else NOW - first * DAY,
        last_deal_at=None if last is None else NOW - last * DAY,
    )


@pytest.mark.unit
def test_the_figures_at_their_bars():
    rows = [
        facts(100, 30, first=95, last=90),  # dark at the bar (30 days); its last deal 90 days ago: not active
        facts(100, 29.99, first=40, last=89.99),  # not dark; active just inside the window; first deal on day 60
        facts(10, 10),  # neither
        facts(200, 1, first=199, last=1),  # first deal on day 1, active
    ]
    f = program_figures(rows, NOW, POLICY, DAY)
    assert (f.partners, f.active, f.dark, f.with_a_deal) == (4, 2, 1, 3)
    assert f.active_rate == 0.5 and f.active_on_target  # at its bar: at least 50%
    assert f.dark_rate == 0.25 and f.dark_on_target is False  # at its bar: not under 25%
    assert f.days_to_first_deal_median == 5.0  # of 5, 60 and 1 days
    assert program_figures(rows[:2], NOW, POLICY, DAY).days_to_first_deal_median == 32.5  # even: the mean of two
    below = program_figures([*rows, facts(1, 1)], NOW, POLICY, DAY)
    assert below.dark_rate == 0.2 and below.dark_on_target and below.active_on_target is False
    empty = program_figures([], NOW, POLICY, DAY)
    assert (empty.active_rate, empty.dark_rate, empty.dark_on_target, empty.days_to_first_deal_median) == (
        None,
        None,
        None,
        None,
    )


async def _aged(sessionmaker, partner: Partner, days: float) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Partner).where(Partner.id == partner.id).values(created_at=datetime.now(UTC) - days * DAY)
        )


async def _acted(sessionmaker, partner: Partner, days: float) -> None:
    await acted(sessionmaker, partner, datetime.now(UTC) - days * DAY)


async def _deal(sessionmaker, partner: Partner, days: float) -> None:
    deal = await make_deal(sessionmaker, partner)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Deal).where(Deal.id == deal.id).values(created_at=datetime.now(UTC) - days * DAY))


async def test_program_figures_through_the_api(api, ops, sessionmaker):
    dark = await make_partner(sessionmaker, tier=Tier.registered)
    await _aged(sessionmaker, dark, 100)
    await _acted(sessionmaker, dark, 31)  # acted, but more than 30 days ago: dark
    busy = await make_partner(sessionmaker, tier=Tier.silver)
    await _aged(sessionmaker, busy, 100)
    await _deal(sessionmaker, busy, 10)  # first deal 90 days after enrolment, active
    await _acted(sessionmaker, busy, 10)
    await make_partner(sessionmaker, tier=Tier.registered)  # new: neither
    late = await make_partner(sessionmaker, tier=Tier.gold)
    await _aged(sessionmaker, late, 50)
    await _deal(sessionmaker, late, 40)  # first deal 10 days after enrolment, active
    await _deal(sessionmaker, late, 35)
    await _acted(sessionmaker, late, 29)
    r = await api.get("/program/figures", headers=ops)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("partners", "active", "dark", "with_a_deal")} == {
        "partners": 4,
        "active": 2,
        "dark": 1,
        "with_a_deal": 2,
    }
    assert (body["active_rate"], body["dark_rate"], body["dark_rate_target"], body["dark_on_target"]) == (
        0.5,
        0.25,
        0.2,
        False,
    )
    assert body["days_to_first_deal_median"] == 50.0
    cam = await new_key(sessionmaker, Role.cam)
    assert (await api.get("/program/figures", headers=cam)).status_code == 403
    assert (await api.get("/program/figures")).status_code == 401
