"""Sign-in over plain HTTP (no browser needed): the CSRF token of the sign-in form, and failed
attempts rate-limited per address and per client, never refusing a genuine link."""

from __future__ import annotations

import re

import pytest

from tests.helpers.api import create_cam
from tests.helpers.waiting import eventually
from tests.web.flows import sign_in_link


async def form_token(http) -> str:
    r = await http.get("/web/sign-in")
    assert r.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)


async def ask(http, email: str, token: str):
    return await http.post("/web/sign-in", data={"email": email, "csrf_token": token})


async def test_sign_in_form_needs_its_token(live, ops, mailbox):
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    r = await live.http.post("/web/sign-in", data={"email": cam["email"]})
    assert r.status_code == 403 and "security token" in r.text
    r = await ask(live.http, cam["email"], "forged-token-forged-token")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    # Links go out in the background: once a later, genuine request's link has arrived, none other came.
    assert (await ask(live.http, cam["email"], await form_token(live.http))).status_code == 200
    await eventually(lambda: sign_in_link(mailbox, cam["email"]), what="the genuine request's link")
    assert [m["To"] for m in mailbox.messages] == [cam["email"]]


async def test_links_per_address_and_failures_per_client_are_limited(live, ops, mailbox):
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    token = await form_token(live.http)
    for _ in range(5):  # an address gets a few links a minute, not a mailbox flood
        assert (await ask(live.http, cam["email"], token)).status_code == 200
    r = await ask(live.http, cam["email"], token)
    assert r.status_code == 429 and "too many sign-in attempts" in r.text
    await eventually(lambda: len([m for m in mailbox.messages if m["To"] == cam["email"]]) == 5, what="5 links")

    limit = live.settings.auth_failures_per_minute  # unknown addresses are failures of this client
    for i in range(limit + 1):  # ... answered like known ones still (the answer tells nothing)
        assert (await ask(live.http, f"nobody{i}@vendor.test", token)).status_code == 200
    r = await live.http.get("/web/sign-in/forged")  # past the limit, a forged link waits
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # A known address from the same client (behind an ingress, every client may share one) still
    # gets its link, and the link signs in: valid credentials are never refused by the count.
    other = await create_cam(live.http, ops, email="robin@vendor.test", name="Robin")
    await sign_in_over_http(live, mailbox, other["email"], token)
    assert (await live.http.get("/web/portfolio")).status_code == 200


async def sign_in_over_http(live, mailbox, email: str, token: str, links: int = 1) -> None:
    for _ in range(links):
        assert (await ask(live.http, email, token)).status_code == 200
    to = email.lower()  # as the mailer writes it
    await eventually(lambda: len([m for m in mailbox.messages if m["To"] == to]) == links, what=f"{links} links")
    link = sign_in_link(mailbox, to, len(mailbox.messages) - 1).removeprefix(live.url)
    r = await live.http.post(link.split("?")[0], data={"csrf_token": token, "next": "/web/portfolio"})
    assert r.status_code == 303 and r.headers["location"] == "/web/portfolio"


async def test_links_sent_do_not_lock_out_their_address(live, ops, mailbox):
    """Asking for several links (up to the limit) still lets the last one sign in."""
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    await sign_in_over_http(live, mailbox, cam["email"], await form_token(live.http), links=5)
    assert (await live.http.get("/web/portfolio")).status_code == 200  # signed in: the session cookie works


@pytest.mark.parametrize("web_settings", [{"ops_email": "channel-ops@camlights.local"}])
async def test_the_default_ops_mailbox_signs_in_as_ops(live, mailbox, web_settings):
    """`make run`'s OPS_EMAIL is on a special-use domain: it still gets its link, and is ops."""
    await sign_in_over_http(live, mailbox, "Channel-Ops@camlights.local", await form_token(live.http))
    r = await live.http.get("/web/ops")
    assert r.status_code == 200 and "Channel operations" in r.text


@pytest.mark.parametrize("web_settings", [{"public_base_url": "https://cam.vendor.test"}])
async def test_behind_https_the_session_cookie_is_secure(live, ops, mailbox, web_settings):
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    r = await live.http.get("/web/sign-in")
    assert "Secure" in r.headers["set-cookie"]  # so this plain-HTTP client hands its value back itself
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    jar = {"Cookie": f"camlights_signin_csrf={token}"}
    r = await live.http.post("/web/sign-in", data={"email": cam["email"], "csrf_token": token}, headers=jar)
    assert r.status_code == 200
    link = await eventually(lambda: sign_in_link(mailbox, cam["email"]), what="the sign-in email")
    assert link.startswith("https://cam.vendor.test/web/sign-in/")
    path = link.removeprefix("https://cam.vendor.test").split("?")[0]
    r = await live.http.post(path, data={"csrf_token": token}, headers=jar)
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("camlights_session="))
    assert {"HttpOnly", "Secure", "SameSite=lax", "Path=/web"} <= {part.strip() for part in cookie.split(";")}
