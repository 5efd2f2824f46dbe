"""The Today page shows the most urgent items (`today.SHOWN` of them) and counts every one: ops'
list of a whole program was 11 MiB of HTML at 10,000 partners (bench/README.md). `?kind=` shows
one kind; a kind that is not a word is a 422."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from api.web import today
from domain.enums import Tier
from journeys.health.models import HealthEpisode
from tests.helpers.factories import make_cam, make_partner
from tests.web import test_offboarding
from tests.web.test_offboarding import signed_in

browsers = test_offboarding.browsers


def shown(page: str) -> list[str]:
    return re.findall(r'<li class="item [^"]*" data-kind="([^"]+)"', page)


async def test_today_shows_the_most_urgent_items_counts_them_all_and_filters_by_kind(
    live, mailbox, sessionmaker, browsers, monkeypatch
):
    cam = await make_cam(sessionmaker, email=f"cam-{uuid.uuid4().hex[:6]}@vendor.test")
    for n in range(3):
        partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam, name=f"Wobbly {n}")
        async with sessionmaker() as session, session.begin():
            session.add(
                HealthEpisode(partner_id=partner.id, episode=1, reason="health dropped", opened_at=datetime.now(UTC))
            )
    desk = browsers()
    await signed_in(desk, mailbox, cam.email)

    every = (await desk.get("/web/")).text
    assert shown(every) == ["health"] * 3 and 'id="today-hidden"' not in every  # at the bar: all shown

    monkeypatch.setattr(today, "SHOWN", 2)
    page = (await desk.get("/web/")).text
    assert shown(page) == ["health", "health"]
    assert "<strong>3</strong> Early warning" in page  # every item counted
    assert re.search(r'id="today-hidden">The 2 most urgent shown; 1 more', page)
    assert 'href="/web/?kind=health"' in page

    one_kind = (await desk.get("/web/", params={"kind": "health"})).text
    assert shown(one_kind) == ["health", "health"] and "1 more\nof this kind" in one_kind
    assert shown((await desk.get("/web/", params={"kind": "deal"})).text) == []
    monkeypatch.setattr(today, "SHOWN", 3)
    assert 'id="today-hidden"' not in (await desk.get("/web/")).text  # at the bar again
    for bad in ("<script>", "x" * 41):
        assert (await desk.get("/web/", params={"kind": bad})).status_code == 422
