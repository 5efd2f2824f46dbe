"""Partner health in the workspace (over HTTP, the live app): an open early warning on the CAM's
Today and the partner page's Health section; the CAM capacity and program figures pages for ops only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from domain.enums import Tier
from journeys.health.contract import HealthPolicy, Signal
from journeys.health.domain import score
from journeys.health.models import HealthEpisode, HealthScore
from tests.helpers.factories import make_cam, make_partner
from tests.web import test_offboarding
from tests.web.test_offboarding import signed_in

browsers = test_offboarding.browsers  # the fixture: new HTTP clients of the live app, each its own session


async def test_early_warning_on_today_and_the_partner_page_and_capacity_for_ops(live, mailbox, sessionmaker, browsers):
    cam = await make_cam(sessionmaker, email=f"cam-{uuid.uuid4().hex[:6]}@vendor.test")
    partner = await make_partner(sessionmaker, tier=Tier.gold, cam=cam, name="Wobbly Networks")
    lapsed = Signal(kind="cert_lapsed", key="cert:1", what="certification Network Associate lapsed on 2027-03-02")
    result = score([lapsed], HealthPolicy())
    async with sessionmaker() as session, session.begin():
        session.add(
            HealthScore(
                idempotency_key="test",
                partner_id=partner.id,
                score=result.score,
                band=result.band.value,
                contributions=[c.model_dump() for c in result.contributions],
                changes=[],
                policy_version=1,
            )
        )
        session.add(
            HealthEpisode(
                partner_id=partner.id, episode=1, reason="health dropped 20 points", opened_at=datetime.now(UTC)
            )
        )
    desk = browsers()
    await signed_in(desk, mailbox, cam.email)
    today = (await desk.get("/web/")).text
    assert "Early warning" in today and "Health: health dropped 20 points" in today
    page = (await desk.get(f"/web/partners/{partner.id}")).text
    assert 'id="health-score"' in page and "\u221212: certification Network Associate lapsed on 2027-03-02" in page
    assert (await desk.get("/web/cams/capacity")).status_code == 403
    assert (await desk.get("/web/program")).status_code == 403

    ops = browsers()
    await signed_in(ops, mailbox, live.settings.ops_email)
    r = await ops.get("/web/cams/capacity")
    assert r.status_code == 200 and 'id="capacity"' in r.text
    row = r.text.split(cam.name, 1)[1].split("</tr>", 1)[0]
    assert "<td>0.04</td>" in row  # one gold partner: 1/25 of a CAM
    figures = await ops.get("/web/program")  # the one partner, enrolled now: not dark, no deal yet
    assert figures.status_code == 200 and 'id="program-figures"' in figures.text
    assert "0.0% (0 of 1)" in figures.text.split('id="dark-rate"', 1)[1].split("</tr>", 1)[0]
