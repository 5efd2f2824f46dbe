"""What the browser tests do again and again: set up a program through the JSON API of the live
server, and sign in through the magic link read from the SMTP sink."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import TimeoutError as PlaywrightTimeout

from domain.enums import Role
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually

REAL_DAYS = 86400  # the production day: deadlines read like "SLA ends in 47 h"


async def program(live, ops, day_seconds: float = REAL_DAYS, retrying_minutes: float = 30) -> None:
    policy = fast_policy(day_seconds=day_seconds).model_dump(mode="json")
    policy["ops"]["retrying_minutes"] = retrying_minutes
    r = await live.http.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text


async def cam_with_partner(live, ops, sessionmaker, *, cam_name="Casey", partner_name="Contoso Cloud", slug="contoso"):
    cam = await create_cam(live.http, ops, email=f"{slug}-cam@vendor.test", name=cam_name)
    partner = await enrol(live.http, ops, tier="gold", cam_id=cam["id"], domain=f"{slug}.test", name=partner_name)
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    return cam, partner, partner_h


async def register_deal(live, partner_h, **over) -> dict:
    r = await live.http.post("/deals", json=deal_body(**over), headers=partner_h)
    assert r.status_code == 201, r.text
    return r.json()


async def deal_state(live, ops, deal_id) -> str:
    return (await live.http.get(f"/deals/{deal_id}", headers=ops)).json()["state"]


async def add_certification(live, ops, partner_id, expires_in: timedelta, track="Network Associate") -> dict:
    now = datetime.now(UTC)
    body = {
        "partner_id": partner_id,
        "person_name": "Pat Engineer",
        "person_email": "pat@contoso.test",
        "track": track,
        "product_category": "network",
        "issued_at": (now - timedelta(days=300)).isoformat(),
        "expires_at": (now + expires_in).isoformat(),
    }
    r = await live.http.post("/certifications", json=body, headers=ops)
    assert r.status_code == 201, r.text
    return r.json()


def sign_in_link(mailbox, email: str, after: int = 0) -> str:
    for message in mailbox.messages[after:]:
        if message["To"] == email and message["X-CAMLights-Template"] == "sign_in":
            text = message.get_body(("plain",)).get_content()
            return re.search(r"Sign in:\s+(\S+)", text).group(1)
    return ""


async def sign_in(context, live, mailbox, email: str):
    """Ask for a link on the sign-in page, open it from the email, confirm: a signed-in page."""
    page = await context.new_page()
    await page.goto(f"{live.url}/web/")
    assert "/web/sign-in" in page.url  # not signed in: sent to the sign-in page
    seen = len(mailbox.messages)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    try:  # the answer is a new page: wait for it (counting at once raced its navigation)
        await page.locator("#sent").wait_for(timeout=15_000)
    except PlaywrightTimeout:
        raise AssertionError(f"no 'check your email' page: {await page.locator('main').inner_text()}") from None
    link = await eventually(lambda: sign_in_link(mailbox, email, seen), what=f"the sign-in email to {email}")
    assert link.startswith(live.url)
    await page.goto(link)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{live.url}/web/")
    return page, link


async def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page (its bundled axe), in words."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
