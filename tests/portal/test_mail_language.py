"""A partner-facing email arrives at the SMTP sink in its recipient's language: the partner's
admin reads German, so the deal journey's "approved" email comes in German; an address that is no
portal user (the CAM) gets English."""

from __future__ import annotations

from sqlalchemy import update

from domain.enums import Role
from store.models.portal import PartnerUser
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def test_a_partner_user_who_reads_german_gets_the_email_in_german(api, ops, sessionmaker, mailbox, worker):
    r = await api.put("/policy", json=fast_policy(day_seconds=86400).model_dump(mode="json"), headers=ops)
    assert r.status_code == 201, r.text
    cam = await create_cam(api, ops, email="casey@vendor.test")
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="contoso.test", name="Contoso Cloud")
    async with sessionmaker() as session, session.begin():
        await session.execute(update(PartnerUser).where(PartnerUser.partner_id == partner["id"]).values(language="de"))
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    deal = (await api.post("/deals", json=deal_body(), headers=partner_h)).json()
    r = await api.post(
        f"/deals/{deal['id']}/decision", json={"decision": "approve", "reason": "fits the plan"}, headers=cam_h
    )
    assert r.status_code == 200, r.text

    def approved(to: str):
        return next((m for m in mailbox.messages if m["To"] == to and m["X-CAMLights-Template"] == "approved"), None)

    german = await eventually(lambda: approved("owner@contoso.test"), what="the approved email to the partner")
    assert german["Subject"].startswith("Deal genehmigt: Globex Corporation, geschützt bis ")
    assert "ist genehmigt und bis" in german.get_body(("plain",)).get_content()
    html = german.get_body(("html",)).get_content()
    assert '<html lang="de">' in html and "Gesendet von CAM Lights" in html
    english = await eventually(lambda: approved("casey@vendor.test"), what="the approved email to the CAM")
    assert english["Subject"].startswith("Deal approved: Globex Corporation")
