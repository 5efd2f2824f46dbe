"""CAM effectiveness (api/effectiveness.py) on real rows of every journey, through the API:
decision times against the SLA (p50/p95), escalations, portfolio health and trend, certification
rate, deal registrations, MDF utilization, QBR completion, lead acceptance; a CAM reads only its
own, ops every CAM's; the CSV defuses formula cells."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from api.effectiveness import LABELS, CamFigures, to_csv
from domain.enums import Role, Tier
from journeys.deal.models import Deal
from journeys.health.models import HealthScore
from journeys.leads.models import LeadOffer
from journeys.mdf.models import MdfEntry, MdfFund
from journeys.qbr.models import Qbr
from store import repo
from tests.cert.factories import make_cert
from tests.deal.factories import make_deal
from tests.helpers.api import new_key
from tests.helpers.factories import make_cam, make_partner
from tests.leads.factories import make_lead

DAY = timedelta(days=1)


async def _decided(sessionmaker, partner, cam, *, took_days: float, state: str = "approved") -> None:
    deal = await make_deal(sessionmaker, partner)
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Deal)
            .where(Deal.id == deal.id)
            .values(
                created_at=now - 5 * DAY,
                decided_at=now - 5 * DAY + took_days * DAY,
                decided_by=f"cam:{cam.id}",
                state=state,
            )
        )


async def _portfolio(sessionmaker, cam):
    one = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    two = await make_partner(sessionmaker, tier=Tier.gold, cam=cam)
    for took in (1, 1.5, 3):  # SLA 2 days: two of three within
        await _decided(sessionmaker, one, cam, took_days=took)
    await _decided(sessionmaker, two, cam, took_days=0.5, state="rejected")
    await make_cert(sessionmaker, one, expires_at=datetime.now(UTC) + 100 * DAY)  # one of two certified
    now = datetime.now(UTC)
    lead = await make_lead(sessionmaker)
    async with sessionmaker() as session, session.begin():
        fund = MdfFund(
            partner_id=one.id,
            period="2026-Q4",
            currency="USD",
            starts_at=now - 30 * DAY,
            ends_at=now + 30 * DAY,
            expires_at=now + 60 * DAY,
        )
        session.add(fund)
        await session.flush()
        for kind, amount in (("allocation", 100_000), ("payment", 25_000)):
            session.add(MdfEntry(fund_id=fund.id, partner_id=one.id, kind=kind, amount_minor=amount, by="system"))
        session.add_all(
            [
                Qbr(partner_id=one.id, period="2026-Q3", state="done"),
                Qbr(partner_id=two.id, period="2026-Q3", state="missed"),
                Qbr(partner_id=two.id, period="2026-Q2", state="done"),
            ]
        )
        for no, (partner, state) in enumerate(((one, "accepted"), (two, "declined"), (two, "expired"), (one, "live"))):
            session.add(
                LeadOffer(
                    lead_id=lead.id,
                    offer_no=no,
                    partner_id=partner.id,
                    state=state,
                    offered_at=now - DAY,
                    expires_at=now + DAY,
                    step_key=f"k{no}",
                )
            )
        for partner, before, after in ((one, 90, 70), (two, 80, 90)):  # trend: (-20 + 10) / 2
            for at, score in ((now - 100 * DAY, before), (now - DAY, after)):
                session.add(
                    HealthScore(
                        idempotency_key=f"{partner.id}:{at}",
                        partner_id=partner.id,
                        at=at,
                        score=score,
                        band="healthy",
                        contributions=[],
                        changes=[],
                        policy_version=1,
                    )
                )
        await repo.claim_step(
            session, key=None, actor="system", action="deal.approval_escalation_sent", partner_id=two.id
        )
    return one, two


async def test_a_cams_effectiveness_through_the_api(api, ops, sessionmaker):
    cam = await make_cam(sessionmaker, email=f"cam-{uuid.uuid4().hex[:6]}@vendor.test")
    other = await make_cam(sessionmaker, email=f"cam-{uuid.uuid4().hex[:6]}@vendor.test")
    await _portfolio(sessionmaker, cam)
    r = await api.get(f"/cams/{cam.id}/effectiveness", headers=await new_key(sessionmaker, Role.cam, cam_id=cam.id))
    assert r.status_code == 200, r.text
    f = r.json()["figures"]
    assert f == {
        "partners": 2,
        "escalations": 1,
        "deal_decision_p50_days": 1.25,  # of 0.5, 1, 1.5 and 3 days
        "deal_decision_p95_days": 2.77,  # 1.5 + 0.85 x (3 - 1.5), interpolated
        "deal_decisions_within_sla": 0.75,  # SLA 2 days
        "deal_registrations": 4,
        "deal_rejected_share": 0.25,
        "certified_share": 0.5,
        "mdf_utilization": 0.25,
        "qbr_completion": 0.6667,
        "lead_acceptance": 0.3333,  # the live offer is not settled yet
        "health_average": 80.0,
        "health_trend": -5.0,
    }
    assert list(r.json()["labels"]) == list(LABELS)
    short = (await api.get(f"/cams/{cam.id}/effectiveness?days=2", headers=ops)).json()["figures"]
    assert (short["deal_registrations"], short["deal_decision_p50_days"], short["health_trend"]) == (0, None, -5.0)
    mine = await new_key(sessionmaker, Role.cam, cam_id=other.id)
    assert (await api.get(f"/cams/{cam.id}/effectiveness", headers=mine)).status_code == 403
    assert (await api.get(f"/cams/{uuid.uuid4()}/effectiveness", headers=ops)).status_code == 404
    assert (await api.get(f"/cams/{cam.id}/effectiveness?days=0", headers=ops)).status_code == 422
    assert (await api.get("/effectiveness/cams", headers=mine)).status_code == 403
    every = (await api.get("/effectiveness/cams", headers=ops)).json()
    assert {c["cam_id"]: c["figures"]["partners"] for c in every} == {str(cam.id): 2, str(other.id): 0}
    empty = next(c for c in every if c["cam_id"] == str(other.id))["figures"]
    assert empty["deal_decision_p50_days"] is None and empty["certified_share"] is None


@pytest.mark.unit
def test_the_csv_defuses_formula_cells():
    at = datetime(2027, 1, 1, tzinfo=UTC)
    row = CamFigures(
        cam_id=uuid.UUID(int=1), name="=HYPERLINK(1)", start=at, end=at, figures={"partners": 3, "health_trend": -5.0}
    )
    lines = to_csv([row]).splitlines()
    assert lines[0].startswith("cam_id,CAM,from,to,Partners,Escalations,")
    cells = lines[1].split(",")
    assert cells[1] == "'=HYPERLINK(1)" and cells[4] == "3" and "'-5.0" in cells
