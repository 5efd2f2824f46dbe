"""What the portal's tests do again and again: a program with two partners, and signing a partner
user in over plain HTTP (the sign-in form's token, the emailed link, its confirmation)."""

from __future__ import annotations

import re

from domain.enums import Role
from tests.helpers.api import enrol, new_key
from tests.helpers.waiting import eventually
from tests.web.flows import REAL_DAYS, program


async def two_partners(live, ops, sessionmaker, *, name="Contoso Cloud", other_name="Fabrikam Systems"):
    await program(live, ops, day_seconds=REAL_DAYS)
    mine = await enrol(live.http, ops, tier="registered", domain="contoso.test", name=name)
    theirs = await enrol(live.http, ops, tier="registered", domain="fabrikam.test", name=other_name)
    for partner in (mine, theirs):  # its onboarding plan is open (the milestones the home page lists)
        await eventually(lambda p=partner: _milestones(live, ops, p["id"]), what="the onboarding plan")
    mine_h = await new_key(sessionmaker, Role.partner, partner_id=mine["id"])
    theirs_h = await new_key(sessionmaker, Role.partner, partner_id=theirs["id"])
    return mine, theirs, mine_h, theirs_h


async def _milestones(live, ops, partner_id) -> list:
    return (await live.http.get(f"/partners/{partner_id}", headers=ops)).json()["milestones"]


def sign_in_link(mailbox, email: str, after: int = 0) -> str:
    """The link of the latest sign-in email to `email` (in whichever language it is written)."""
    for message in mailbox.messages[after:]:
        if message["To"] == email and message["X-CAMLights-Template"] == "sign_in":
            text = message.get_body(("plain",)).get_content()
            return re.search(r"(?:Sign in|Anmelden):\s+(\S+)", text).group(1)
    return ""


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def sign_in(http, mailbox, email: str, next_page: str = "/portal/") -> str:
    """Sign `email` in on this client (its cookie jar); returns the session's CSRF token."""
    r = await http.get("/portal/sign-in")
    token = csrf_of(r.text)
    seen = len(mailbox.messages)
    r = await http.post("/portal/sign-in", data={"email": email, "csrf_token": token, "next": next_page})
    assert r.status_code == 200 and 'id="sent"' in r.text, r.text
    link = await eventually(lambda: sign_in_link(mailbox, email.lower(), seen), what=f"the sign-in email to {email}")
    path = "/" + link.split("/", 3)[3]
    r = await http.get(path)
    assert r.status_code == 200 and "confirm-sign-in" in r.text, r.text
    r = await http.post(path.split("?")[0], data={"csrf_token": token, "next": next_page})
    assert r.status_code == 303 and r.headers["location"] == next_page, r.text
    page = await http.get(next_page)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)
