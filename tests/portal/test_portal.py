"""The partner portal over real HTTP (the live app, PostgreSQL, SMTP sink, Temporal and a worker):
partner users and the team API, sign-in, the home page built from the journeys, the tasks through
the journeys' services, languages, and the rules: a partner user sees and acts on its own partner
only (another partner's ids answer 404 and change nothing), a member does not manage the team, a
removed user's session ends at once, hostile names render as text."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from store.models import AuditEvent
from store.models.portal import PartnerUser
from tests.helpers.api import deal_body
from tests.helpers.waiting import eventually
from tests.portal.flows import sign_in, two_partners
from tests.web.flows import register_deal


async def audit_count(sessionmaker, partner_id) -> int:
    """The audit rows about this partner (the signed-in partner's own journeys write theirs meanwhile)."""
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).where(AuditEvent.partner_id == partner_id))


async def test_the_primary_contact_is_admin_and_ops_manage_the_team(live, ops, sessionmaker, worker):
    mine, theirs, mine_h, _ = await two_partners(live, ops, sessionmaker)
    r = await live.http.get(f"/partners/{mine['id']}/users", headers=ops)
    assert r.status_code == 200
    assert [(u["email"], u["role"]) for u in r.json()] == [("owner@contoso.test", "admin")]
    body = {"name": "Dana Sales", "email": "Dana@Contoso.test", "language": "de", "time_zone": "Europe/Berlin"}
    r = await live.http.post(f"/partners/{mine['id']}/users", json=body, headers=ops)
    assert r.status_code == 201, r.text
    dana = r.json()
    assert (dana["email"], dana["role"], dana["language"]) == ("dana@contoso.test", "member", "de")
    assert (await live.http.post(f"/partners/{mine['id']}/users", json=body, headers=ops)).status_code == 409
    bad = await live.http.post(
        f"/partners/{mine['id']}/users",
        json={**body, "email": "x@contoso.test", "time_zone": "Mars/Olympus"},
        headers=ops,
    )
    assert bad.status_code == 422 and "time_zone" in bad.text
    # Another partner's user id under this partner: 404, nothing removed.
    r = await live.http.delete(f"/partners/{theirs['id']}/users/{dana['id']}", headers=ops)
    assert r.status_code == 404
    # The last admin stays.
    admin = next(
        u for u in (await live.http.get(f"/partners/{mine['id']}/users", headers=ops)).json() if u["role"] == "admin"
    )
    assert (await live.http.delete(f"/partners/{mine['id']}/users/{admin['id']}", headers=ops)).status_code == 409
    assert (await live.http.delete(f"/partners/{mine['id']}/users/{dana['id']}", headers=ops)).status_code == 204
    # A partner's own key sees its team only.
    assert (await live.http.get(f"/partners/{theirs['id']}/users", headers=mine_h)).status_code == 403


async def test_first_sign_in_completes_portal_access(live, ops, sessionmaker, mailbox, worker):
    mine, _, mine_h, _ = await two_partners(live, ops, sessionmaker)

    async def portal_access_done():
        detail = (await live.http.get(f"/partners/{mine['id']}", headers=ops)).json()
        return next(m for m in detail["milestones"] if m["key"] == "portal_access")["done_at"]

    assert await portal_access_done() is None
    await sign_in(live.http, mailbox, "owner@contoso.test")
    await eventually(portal_access_done, what="the portal_access milestone done")


async def test_home_and_tasks_through_the_journeys(live, ops, sessionmaker, mailbox, worker):
    mine, theirs, mine_h, theirs_h = await two_partners(live, ops, sessionmaker)
    await register_deal(live, theirs_h, customer_name="Initech", customer_domain="initech.com")
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test")
    home = (await live.http.get("/portal/")).text
    assert "Contoso Cloud: what needs you now" in home
    assert home.index("Complete the first sales training") < home.index("Register a first deal")  # most urgent first
    # Mark a milestone done (the onboarding journey's update).
    r = await live.http.post("/portal/milestones/first_training", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert "Marked as done." in (await live.http.get(r.headers["location"])).text
    detail = (await live.http.get(f"/partners/{mine['id']}", headers=ops)).json()
    assert next(m for m in detail["milestones"] if m["key"] == "first_training")["done_at"]
    # Register a deal another partner registered: the conflict is said plainly.
    form = {**deal_body(customer_name="Initech", customer_domain="initech.com"), "csrf_token": csrf}
    r = await live.http.post("/portal/deals", data=form)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/deals/")
    page = (await live.http.get(r.headers["location"])).text
    assert "Already registered by another partner: your registration is under review." in page
    assert "under review: registered by another partner too" in page
    # Register a fresh deal: it is the API's deal, auto-approved for a registered partner.
    r = await live.http.post("/portal/deals", data={**deal_body(amount="5000.00"), "csrf_token": csrf})
    deal_path = r.headers["location"]
    deal_id = deal_path.rsplit("/", 1)[1]
    deal = (await live.http.get(f"/deals/{deal_id}", headers=mine_h)).json()
    assert deal["partner_id"] == mine["id"] and deal["customer_name"] == "Globex Corporation"
    await eventually(lambda: _state(live, ops, deal_id, "approved"), what="the deal approved")
    # Request an extension (the deal journey's update).
    r = await live.http.post(f"{deal_path}/extensions", data={"days": "10", "reason": "slipped", "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == deal_path
    page = (await live.http.get(deal_path)).text
    assert "Extension granted" in page or "your CAM decides" in page
    assert (await live.http.get(f"/deals/{deal_id}", headers=ops)).json()["extensions_used"] == 1
    # A bad form is said on the page, nothing written.
    r = await live.http.post("/portal/deals", data={**deal_body(amount="lots"), "csrf_token": csrf})
    assert "amount: not a number" in (await live.http.get(r.headers["location"])).text


async def _state(live, ops, deal_id, state) -> bool:
    return (await live.http.get(f"/deals/{deal_id}", headers=ops)).json()["state"] == state


async def test_another_partners_ids_answer_404_and_change_nothing(live, ops, sessionmaker, mailbox, worker):
    mine, theirs, _, theirs_h = await two_partners(live, ops, sessionmaker)
    their_deal = await register_deal(live, theirs_h, amount="5000.00")  # auto-approved
    await eventually(lambda: _state(live, ops, their_deal["id"], "approved"), what="their deal approved")
    r = await live.http.post(
        f"/partners/{theirs['id']}/users", json={"name": "Eve", "email": "eve@fabrikam.test"}, headers=ops
    )
    their_user = r.json()
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test")

    async def their_first_deal_recorded():  # their journeys are quiet: nothing of theirs is written meanwhile
        detail = (await live.http.get(f"/partners/{theirs['id']}", headers=ops)).json()
        return next(m for m in detail["milestones"] if m["key"] == "first_deal")["done_at"]

    await eventually(their_first_deal_recorded, what="their first deal milestone")
    before = await audit_count(sessionmaker, theirs["id"])
    assert (await live.http.get(f"/portal/deals/{their_deal['id']}")).status_code == 404
    r = await live.http.post(f"/portal/deals/{their_deal['id']}/extensions", data={"days": "5", "csrf_token": csrf})
    assert r.status_code == 404
    r = await live.http.post(f"/portal/team/{their_user['id']}/remove", data={"csrf_token": csrf})
    assert r.status_code == 404
    assert their_deal["customer_name"] not in (await live.http.get("/portal/deals")).text
    assert (await live.http.get(f"/deals/{their_deal['id']}", headers=ops)).json()["extensions_used"] == 0
    assert len((await live.http.get(f"/partners/{theirs['id']}/users", headers=ops)).json()) == 2
    assert await audit_count(sessionmaker, theirs["id"]) == before


async def test_a_member_does_not_manage_the_team_and_a_removed_user_is_signed_out(
    live, ops, sessionmaker, mailbox, worker
):
    mine, _, _, _ = await two_partners(live, ops, sessionmaker)
    r = await live.http.post(
        f"/partners/{mine['id']}/users", json={"name": "Mo", "email": "mo@contoso.test"}, headers=ops
    )
    mo = r.json()
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as member:
        csrf = await sign_in(member, mailbox, "mo@contoso.test", "/portal/team")
        assert 'id="invite"' not in (await member.get("/portal/team")).text
        r = await member.post("/portal/team", data={"name": "X", "email": "x@contoso.test", "csrf_token": csrf})
        assert r.status_code == 403
        assert len((await live.http.get(f"/partners/{mine['id']}/users", headers=ops)).json()) == 2
        # The admin removes Mo: Mo's session ends at once.
        admin_csrf = await sign_in(live.http, mailbox, "owner@contoso.test", "/portal/team")
        r = await live.http.post(f"/portal/team/{mo['id']}/remove", data={"csrf_token": admin_csrf})
        assert r.status_code == 303
        r = await member.get("/portal/")
        assert r.status_code == 303 and r.headers["location"].startswith("/portal/sign-in")
        async with sessionmaker() as session:
            assert await session.get(PartnerUser, mo["id"]) is None


async def test_hostile_names_render_as_text_and_german_is_formatted(live, ops, sessionmaker, mailbox, worker):
    hostile = '<script>alert("x")</script> & Co'
    mine, theirs, mine_h, _ = await two_partners(live, ops, sessionmaker, name=hostile)
    await register_deal(live, mine_h, customer_name='<img src=x onerror="alert(1)">', amount="25000.00")
    async with sessionmaker() as session, session.begin():
        user = await session.scalar(select(PartnerUser).where(PartnerUser.email == "owner@contoso.test"))
        user.language, user.time_zone = "de", "Europe/Berlin"
    await sign_in(live.http, mailbox, "owner@contoso.test", "/portal/deals")
    home = (await live.http.get("/portal/")).text
    assert "<script>alert" not in home and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in home
    assert "was jetzt ansteht" in home and "Das erste Vertriebstraining abschließen" in home and 'lang="de"' in home
    deals = (await live.http.get("/portal/deals")).text
    assert "<img src=x" not in deals and "&lt;img src=x" in deals
    assert "25.000,00\xa0$" in deals  # money by the German locale
    assert "Deal registrieren" in deals


async def test_sessions_csrf_headers_and_no_open_redirect(live, ops, sessionmaker, mailbox, worker):
    await two_partners(live, ops, sessionmaker)
    r = await live.http.get("/portal/sign-in")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    # A form without the token is refused before anything is done.
    r = await live.http.post("/portal/sign-in", data={"email": "owner@contoso.test"})
    assert r.status_code == 403
    # A link to another site after sign-in goes to the portal's home instead.
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test", "/portal/")
    cookie = next(c for c in live.http.cookies.jar if c.name == "camlights_portal_session")
    assert cookie.path == "/portal" and cookie.has_nonstandard_attr("HttpOnly")
    r = await live.http.get("/portal/sign-in", params={"next": "//evil.test/x"})
    assert 'name="next" value="/portal/"' in r.text
    r = await live.http.post("/portal/milestones/first_training", data={"csrf_token": "forged-forged-forged"})
    assert r.status_code == 403
    r = await live.http.post(
        "/portal/milestones/first_training", data={"csrf_token": csrf, "back": "https://evil.test/"}
    )
    assert r.headers["location"] == "/portal/"
    # The workspace's session is not the portal's, nor the reverse.
    assert (await live.http.get("/web/")).status_code == 303


async def test_each_user_chooses_their_language_and_time_zone(live, ops, sessionmaker, mailbox, worker):
    await two_partners(live, ops, sessionmaker)
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test", "/portal/team")
    r = await live.http.post(
        "/portal/me", data={"language": "fr", "time_zone": "UTC", "csrf_token": csrf, "back": "/portal/team"}
    )
    assert "language: one of en, de" in (await live.http.get(r.headers["location"])).text
    r = await live.http.post(
        "/portal/me", data={"language": "de", "time_zone": "Mars/Base", "csrf_token": csrf, "back": "/portal/team"}
    )
    assert "unknown time zone" in (await live.http.get(r.headers["location"])).text
    r = await live.http.post(
        "/portal/me", data={"language": "de", "time_zone": "Europe/Berlin", "csrf_token": csrf, "back": "/portal/team"}
    )
    page = (await live.http.get(r.headers["location"])).text
    assert "Ihre Einstellungen" in page and 'value="Europe/Berlin"' in page
    async with sessionmaker() as session:
        user = await session.scalar(select(PartnerUser).where(PartnerUser.email == "owner@contoso.test"))
        assert (user.language, user.time_zone) == ("de", "Europe/Berlin")


async def test_requesting_funds_from_the_catalog(live, ops, sessionmaker, mailbox, worker):
    mine, _, _, _ = await two_partners(live, ops, sessionmaker)
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test", "/portal/mdf")
    page = (await live.http.get("/portal/mdf")).text
    assert "Available in " in page and "$2,500.00" in page  # the registered tier's allocation
    form = {
        "activity_type": "webinar",
        "title": "Spring webinar",
        "planned_start": "2027-04-01",
        "planned_end": "2027-04-02",
        "amount": "800",
        "csrf_token": csrf,
    }
    r = await live.http.post("/portal/mdf", data=form)
    page = (await live.http.get(r.headers["location"])).text
    assert "Funds requested: $800.00 reserved." in page, page
    requests = (await live.http.get("/mdf/requests", params={"partner_id": mine["id"]}, headers=ops)).json()
    assert [(q["title"], q["amount_minor"]) for q in requests] == [("Spring webinar", 80000)]
    r = await live.http.post("/portal/mdf", data={**form, "amount": "99999"})
    assert "available" in (await live.http.get(r.headers["location"])).text  # over the fund: refused, said
    assert len((await live.http.get("/mdf/requests", params={"partner_id": mine["id"]}, headers=ops)).json()) == 1


async def test_a_workspace_link_is_no_portal_link_and_sign_in_is_rate_limited(live, ops, sessionmaker, mailbox, worker):
    from datetime import timedelta

    from domain.signin import PORTAL_SALT, SALT, make_sign_in_token, new_claims

    await two_partners(live, ops, sessionmaker)
    claims = new_claims("owner@contoso.test", timedelta(minutes=5))
    workspace_link = make_sign_in_token(live.settings.link_secret, claims, SALT)
    r = await live.http.get(f"/portal/sign-in/{workspace_link}")
    assert r.status_code == 403 and "not valid" in r.text
    portal_link = make_sign_in_token(live.settings.link_secret, claims, PORTAL_SALT)
    assert (await live.http.get(f"/web/sign-in/{portal_link}")).status_code == 403
    assert (await live.http.get(f"/portal/sign-in/{portal_link}")).status_code == 200
    # Links per address are limited (the workspace's shared limits): no mailbox flood.
    r = await live.http.get("/portal/sign-in")
    token = r.text.split('name="csrf_token" value="')[1].split('"')[0]
    answers = [
        (await live.http.post("/portal/sign-in", data={"email": "owner@contoso.test", "csrf_token": token})).status_code
        for _ in range(6)
    ]
    assert answers[:5] == [200] * 5 and answers[5] == 429


async def test_the_sign_in_email_is_in_the_users_language(live, ops, sessionmaker, mailbox, worker):
    import re

    await two_partners(live, ops, sessionmaker)
    async with sessionmaker() as session, session.begin():
        user = await session.scalar(select(PartnerUser).where(PartnerUser.email == "owner@contoso.test"))
        user.language = "de"
    r = await live.http.get("/portal/sign-in")
    token = r.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = await live.http.post("/portal/sign-in", data={"email": "owner@contoso.test", "csrf_token": token})
    assert r.status_code == 200

    def german():
        return next(
            (m for m in mailbox.messages if m["To"] == "owner@contoso.test" and m["X-CAMLights-Template"] == "sign_in"),
            None,
        )

    message = await eventually(german, what="the sign-in email")
    assert message["Subject"] == "Ihr Anmeldelink für das CAM Lights Partnerportal"
    link = re.search(r"Anmelden:\s+(\S+)", message.get_body(("plain",)).get_content()).group(1)
    path = "/" + link.split("/", 3)[3]
    r = await live.http.post(path.split("?")[0], data={"csrf_token": token, "next": "/portal/"})
    assert r.status_code == 303
    assert "was jetzt ansteht" in (await live.http.get("/portal/")).text
