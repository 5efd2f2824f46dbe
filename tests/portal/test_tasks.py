"""The partner portal's lead, deal and MDF tasks over real HTTP (the live app, PostgreSQL, SMTP sink,
Temporal and a worker), each through the journey's own service and workflow update: lead offers
accepted and declined inline (a decline needs one of the policy's reasons and a few words), the
deal registered for an accepted lead (the lead converted); a deal moved and closed; an MDF
request's approvals followed and its claim sent with proof files (a wrong type or size refused
before anything is stored). Another partner's ids answer 404 and change nothing, every form needs
its CSRF token, hostile names render as text."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from api.portal.i18n import Translator
from domain.enums import Role
from journeys.leads.models import LeadOffer
from journeys.mdf.models import MdfProof
from store.models.portal import PartnerUser
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from tests.leads.test_api import lead_body
from tests.mdf.test_api import FORMULA_CSV, PDF, png
from tests.mdf.test_api import body as mdf_body
from tests.portal.flows import sign_in, two_partners
from tests.portal.test_portal import audit_count
from tests.web.flows import REAL_DAYS, program, register_deal

HOSTILE = '<img src=x onerror="alert(1)">'


async def notice(http, r) -> str:
    """The notice the page after a form shows (the post/redirect/get cookie)."""
    assert r.status_code == 303, (r.status_code, r.text[:300])
    page = (await http.get(r.headers["location"])).text
    found = re.search(r'id="notice">([^<]*)<', page)
    return found.group(1) if found else ""


async def accepting(live, headers, partner_id, yes: bool) -> None:
    r = await live.http.put(f"/leads/preferences/{partner_id}", json={"accepting": yes}, headers=headers)
    assert r.status_code == 200, r.text


async def offered_to(live, ops, lead_id) -> bool:
    return (await live.http.get(f"/leads/{lead_id}", headers=ops)).json()["state"] == "offered"


async def test_lead_offers_answered_inline_and_the_deal_registered_for_the_lead(
    live, ops, sessionmaker, mailbox, worker
):
    mine, theirs, mine_h, theirs_h = await two_partners(live, ops, sessionmaker)
    # Their lead first (we take none), then two of ours (they take none).
    await accepting(live, mine_h, mine["id"], False)
    their_lead = (await live.http.post("/leads", json=lead_body(domain="umbrella.test"), headers=ops)).json()
    await eventually(lambda: offered_to(live, ops, their_lead["id"]), what="their lead offered")
    await accepting(live, mine_h, mine["id"], True)
    await accepting(live, theirs_h, theirs["id"], False)
    ours = (await live.http.post("/leads", json=lead_body(domain="initech.test"), headers=ops)).json()
    hostile = (await live.http.post("/leads", json=lead_body(domain="hooli.test", company=HOSTILE), headers=ops)).json()
    for lead in (ours, hostile):
        await eventually(lambda lead=lead: offered_to(live, ops, lead["id"]), what="our lead offered")
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test")
    home = (await live.http.get("/portal/")).text
    assert home.count("Lead offer") == 2 and "accept by" in home and "Umbrella" not in home
    assert "<img src=x" not in home and "&lt;img src=x onerror=" in home  # a hostile company is text
    assert "not our territory" in home  # the policy's reasons, in words
    page = (await live.http.get(f"/portal/leads/{hostile['id']}")).text
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    # In the user's language and time zone: the acceptance deadline as a Tokyo reader reads it.
    async with sessionmaker() as session, session.begin():
        user = await session.scalar(select(PartnerUser).where(PartnerUser.email == "owner@contoso.test"))
        user.language, user.time_zone = "de", "Asia/Tokyo"
        offer = await session.scalar(select(LeadOffer).where(LeadOffer.lead_id == ours["id"]))
    home = (await live.http.get("/portal/")).text
    assert "Lead-Angebot" in home and "annehmen bis" in home and "keine Kapazität" in home
    assert Translator("de", "Asia/Tokyo").datetime(offer.expires_at) in home
    async with sessionmaker() as session, session.begin():
        user = await session.get(PartnerUser, user.id)
        user.language, user.time_zone = "en", "UTC"

    # Decline: a reason from the policy's list and a few words, else said plainly and nothing sent.
    decline = f"/portal/leads/{hostile['id']}/decline"
    r = await live.http.post(decline, data={"reason_code": "because", "reason": "x", "csrf_token": csrf})
    assert await notice(live.http, r) == "Choose a reason for declining."
    r = await live.http.post(decline, data={"reason_code": "bad_lead", "reason": " ", "csrf_token": csrf})
    assert await notice(live.http, r) == "Say in a few words why you decline."
    assert (await live.http.post(decline, data={"reason_code": "bad_lead", "reason": "spam"})).status_code == 403
    assert await offered_to(live, ops, hostile["id"])
    r = await live.http.post(decline, data={"reason_code": "bad_lead", "reason": "a spam form", "csrf_token": csrf})
    assert await notice(live.http, r) == "Lead declined."
    async with sessionmaker() as session:  # the offer closed by the journey's update, with its reason
        offer = await session.scalar(select(LeadOffer).where(LeadOffer.lead_id == hostile["id"]))
    assert (offer.state, offer.reason_code, offer.reason) == ("declined", "bad_lead", "a spam form")

    # Another partner's lead: 404 on every page and action, and nothing changes.
    before = await audit_count(sessionmaker, theirs["id"])
    assert (await live.http.get(f"/portal/leads/{their_lead['id']}")).status_code == 404
    for action, form in (
        ("accept", {}),
        ("decline", {"reason_code": "bad_lead", "reason": "mine now"}),
        ("deal", deal_body()),
    ):
        r = await live.http.post(f"/portal/leads/{their_lead['id']}/{action}", data={**form, "csrf_token": csrf})
        assert r.status_code == 404, (action, r.text[:200])
    assert await offered_to(live, ops, their_lead["id"])
    assert await audit_count(sessionmaker, theirs["id"]) == before

    # Accept inline: the lead's page with its conversion deadline and the deal prefilled.
    r = await live.http.post(f"/portal/leads/{ours['id']}/accept", data={"csrf_token": csrf})
    assert r.headers["location"] == f"/portal/leads/{ours['id']}"
    assert await notice(live.http, r) == "Lead accepted: register the deal for it."
    page = (await live.http.get(f"/portal/leads/{ours['id']}")).text
    assert 'id="conversion-deadline"' in page and 'value="Initech"' in page and 'value="initech.test"' in page
    assert 'value="25000.00"' in page and 'value="EUR"' in page
    assert (await live.http.get(f"/leads/{ours['id']}", headers=ops)).json()["state"] == "accepted"
    home = (await live.http.get("/portal/")).text
    assert "Accepted lead: register the deal" in home and "register the deal by" in home
    r = await live.http.post(f"/portal/leads/{ours['id']}/accept", data={"csrf_token": csrf})
    assert "no open offer" in await notice(live.http, r)  # the journey's refusal, said plainly

    # Register the deal for the lead: the deal journey's registration, and the lead converted.
    form = {
        **deal_body(customer_name="Initech", customer_domain="initech.test", amount="25000.00", currency="EUR"),
        "csrf_token": csrf,
    }
    r = await live.http.post(f"/portal/leads/{ours['id']}/deal", data={**form, "amount": "lots"})
    assert await notice(live.http, r) == "amount: not a number"
    r = await live.http.post(f"/portal/leads/{ours['id']}/deal", data=form)
    assert r.headers["location"].startswith("/portal/deals/")
    assert await notice(live.http, r) == "Deal registered for the lead."
    deal_id = r.headers["location"].rsplit("/", 1)[1]

    async def converted():
        lead = (await live.http.get(f"/leads/{ours['id']}", headers=ops)).json()
        return lead["state"] == "converted" and lead["deal_id"] == deal_id

    await eventually(converted, what="the lead converted with the portal's deal")
    assert (await live.http.get(f"/deals/{deal_id}", headers=mine_h)).json()["customer_name"] == "Initech"


async def _deal(live, ops, deal_id) -> dict:
    return (await live.http.get(f"/deals/{deal_id}", headers=ops)).json()


async def test_a_deal_moved_and_closed_from_the_portal(live, ops, sessionmaker, mailbox, worker):
    mine, theirs, mine_h, theirs_h = await two_partners(live, ops, sessionmaker)
    ours = await register_deal(live, mine_h, amount="5000.00")  # auto-approved for a registered partner
    theirs_deal = await register_deal(
        live, theirs_h, amount="5000.00", customer_name="Initech", customer_domain="initech.com"
    )
    for deal in (ours, theirs_deal):
        await eventually(lambda d=deal: _approved(live, ops, d["id"]), what="the deal approved")
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test", f"/portal/deals/{ours['id']}")
    page = (await live.http.get(f"/portal/deals/{ours['id']}")).text
    assert 'id="move-stage"' in page and 'id="close-deal"' in page and 'id="deal-stage"' in page
    path = f"/portal/deals/{ours['id']}/stage"
    r = await live.http.post(path, data={"stage": "closed", "csrf_token": csrf})
    assert (await notice(live.http, r)).startswith("stage: one of")
    assert (await live.http.post(path, data={"stage": "proposal"})).status_code == 403  # no CSRF token
    r = await live.http.post(path, data={"stage": "proposal", "csrf_token": csrf})
    assert await notice(live.http, r) == "The deal moves to the stage: proposal."
    await eventually(lambda: _stage(live, ops, ours["id"], "proposal"), what="the stage recorded")
    # Another partner's deal: 404, unchanged.
    r = await live.http.post(
        f"/portal/deals/{theirs_deal['id']}/stage", data={"stage": "closed_lost", "csrf_token": csrf}
    )
    assert r.status_code == 404
    # Close it won: the deal journey ends; a further move is refused, said plainly.
    r = await live.http.post(path, data={"stage": "closed_won", "csrf_token": csrf})
    assert await notice(live.http, r) == "The deal is closed as won."
    await eventually(lambda: _state(live, ops, ours["id"], "won"), what="the deal won")
    r = await live.http.post(path, data={"stage": "negotiation", "csrf_token": csrf})
    assert await notice(live.http, r) == "deal is won: only an approved deal changes stage"
    page = (await live.http.get(f"/portal/deals/{ours['id']}")).text
    assert 'id="move-stage"' not in page
    theirs_now = await _deal(live, ops, theirs_deal["id"])
    assert (theirs_now["state"], theirs_now["stage"]) == ("approved", "qualification")


async def _approved(live, ops, deal_id) -> bool:
    return (await _deal(live, ops, deal_id))["state"] == "approved"


async def _state(live, ops, deal_id, state) -> bool:
    return (await _deal(live, ops, deal_id))["state"] == state


async def _stage(live, ops, deal_id, stage) -> bool:
    return (await _deal(live, ops, deal_id))["stage"] == stage


async def proofs(sessionmaker) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(MdfProof))


async def test_an_mdf_request_followed_and_claimed_with_proof(live, ops, sessionmaker, mailbox, worker):
    await program(live, ops, day_seconds=REAL_DAYS)
    cam = await create_cam(live.http, ops, email="mdf-cam@vendor.test", name="Casey")
    mine = await enrol(live.http, ops, tier="gold", cam_id=cam["id"], domain="contoso.test", name="Contoso")
    theirs = await enrol(live.http, ops, tier="gold", cam_id=cam["id"], domain="fabrikam.test", name="Fabrikam")
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    requests = []
    for partner in (mine, theirs):
        partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
        r = await live.http.post("/mdf/requests", json=mdf_body(title=HOSTILE), headers=partner_h)
        assert r.status_code == 201, r.text
        req = r.json()
        r = await live.http.post(
            f"/mdf/requests/{req['id']}/decision", json={"decision": "approve", "reason": "good plan"}, headers=cam_h
        )
        assert r.status_code == 200 and r.json()["state"] == "approved", r.text
        requests.append(req)
    ours, their_req = requests
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test", "/portal/mdf")
    assert f'href="/portal/mdf/{ours["id"]}"' in (await live.http.get("/portal/mdf")).text
    form = {"activity_type": "webinar", "title": "W", "planned_start": "2027-04-01", "planned_end": "2027-04-02"}
    r = await live.http.post("/portal/mdf", data={**form, "amount": "NaN", "csrf_token": csrf})  # was a 500
    assert (await notice(live.http, r)).startswith("amount: a positive amount")
    page = (await live.http.get(f"/portal/mdf/{ours['id']}")).text
    assert 'id="approvals"' in page and "good plan" in page and "approved" in page and 'id="claim"' in page
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert "Needed: Invoice, Photo, Attendee list." in page  # an event's proof

    url = f"/portal/mdf/{ours['id']}/claim"
    fields = {"amount": "500", "total_cost": "1000", "csrf_token": csrf}
    good = [
        ("invoice", ("invoice.pdf", PDF, "application/pdf")),
        ("photo", ("booth.png", png(), "image/png")),
        ("attendee_list", ("attendees.csv", FORMULA_CSV, "text/csv")),
    ]
    r = await live.http.post(
        url, data=fields, files=[("invoice", ("x.pdf", b"MZ\x90\x00exe", "application/pdf")), *good[1:]]
    )
    assert "invoice: x.pdf: its content is not a PDF, PNG, JPEG or CSV file" in await notice(live.http, r)
    r = await live.http.post(url, data=fields, files=good[:1])
    assert "files: proof of kind photo, attendee_list is needed" in await notice(live.http, r)
    r = await live.http.post(url, data={**fields, "amount": "1e30"}, files=good)
    assert (await notice(live.http, r)).startswith("amount: a positive amount")
    r = await live.http.post(url, data={k: v for k, v in fields.items() if k != "csrf_token"}, files=good)
    assert r.status_code == 403
    # The policy's size limit: refused naming the file, nothing stored.
    policy = fast_policy(day_seconds=REAL_DAYS).model_dump(mode="json")
    policy["mdf"].update(max_file_bytes=1024, max_total_bytes=4096)
    assert (await live.http.put("/policy", json=policy, headers=ops)).status_code == 201
    r = await live.http.post(
        url, data=fields, files=[("invoice", ("big.pdf", PDF + b"0" * 2000, "application/pdf")), *good[1:]]
    )
    assert "invoice: big.pdf is over 1024 bytes" in await notice(live.http, r)
    assert await proofs(sessionmaker) == 0
    # Another partner's request: 404, nothing stored.
    assert (await live.http.get(f"/portal/mdf/{their_req['id']}")).status_code == 404
    for action in ("claim", "proofs"):
        r = await live.http.post(f"/portal/mdf/{their_req['id']}/{action}", data=fields, files=good)
        assert r.status_code == 404 and await proofs(sessionmaker) == 0
    # The claim: its files stored, the journey's update answered.
    r = await live.http.post(url, data=fields, files=good)
    assert await notice(live.http, r) == "Claim submitted: $500.00, under review."
    got = (await live.http.get(f"/mdf/requests/{ours['id']}", headers=ops)).json()
    assert (got["state"], got["claim_minor"]) == ("claim_review", 50_000)
    page = (await live.http.get(f"/portal/mdf/{ours['id']}")).text
    assert 'id="proofs"' in page and "booth.png" in page and 'id="claim"' not in page
    assert await proofs(sessionmaker) == 3
    # The CAM returns the claim for more proof: the page asks for it, and it goes to the journey.
    r = await live.http.post(
        f"/mdf/requests/{ours['id']}/claim/decision", json={"decision": "return", "reason": "blurry"}, headers=cam_h
    )
    assert r.status_code == 200 and r.json()["state"] == "claim_returned", r.text
    page = (await live.http.get(f"/portal/mdf/{ours['id']}")).text
    assert "Add proof" in page and "claim returned: more proof needed" in page and "blurry" in page
    more = f"/portal/mdf/{ours['id']}/proofs"
    r = await live.http.post(more, data={"csrf_token": csrf})
    assert await notice(live.http, r) == "Choose at least one file."
    r = await live.http.post(more, data={"csrf_token": csrf}, files=[("photo", ("sharp.png", png(), "image/png"))])
    assert await notice(live.http, r) == "Proof added: the claim is reviewed again."
    assert (await live.http.get(f"/mdf/requests/{ours['id']}", headers=ops)).json()["state"] == "claim_review"
    assert await proofs(sessionmaker) == 4
    # Approved and paid: the payment is on the page.
    r = await live.http.post(f"/mdf/requests/{ours['id']}/claim/decision", json={"decision": "approve"}, headers=cam_h)
    assert r.status_code == 200 and r.json()["state"] == "claim_approved", r.text
    payment = {"reference": "PAY-2027-17", "amount_minor": 50_000, "paid_on": "2027-01-15"}
    r = await live.http.post(f"/mdf/requests/{ours['id']}/payments", json=payment, headers=ops)
    assert r.status_code == 200 and r.json()["state"] == "paid", r.text
    page = (await live.http.get(f"/portal/mdf/{ours['id']}")).text
    assert 'id="payments"' in page and "PAY-2027-17" in page and "Jan 15, 2027" in page
    assert re.search(r'id="paid">\$500\.00<', page) and 'id="claim"' not in page
