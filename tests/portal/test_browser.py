"""The partner portal in headless Chromium: a partner user does the top tasks as a person would
(each timed: page loads counted, wall time reported; the table is in docs/portal.md and the
README), with the keyboard alone for three of them (a deal, an extension, an invitation); another
partner's deal answers 404; every page passes axe-core with no serious or critical violation;
screenshots of home and a task in English and German."""

from __future__ import annotations

import time
from dataclasses import dataclass

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import expect
from sqlalchemy import select

from store.models.portal import PartnerUser
from tests.helpers.waiting import eventually
from tests.portal.flows import two_partners
from tests.web.flows import register_deal, sign_in_link

TIMINGS: list[tuple[str, int, float]] = []  # (task, page loads, seconds)


@dataclass
class Counter:
    loads: int = 0

    def attach(self, page) -> None:
        page.on("load", lambda _: setattr(self, "loads", self.loads + 1))


class Timed:
    def __init__(self, counter: Counter, task: str):
        self.counter, self.task = counter, task

    async def __aenter__(self):
        self.start, self.loads = time.monotonic(), self.counter.loads
        return self

    async def __aexit__(self, *exc):
        if exc[0] is None:
            loads = self.counter.loads - self.loads
            TIMINGS.append((self.task, loads, time.monotonic() - self.start))
            assert loads <= 5, f"{self.task}: {loads} page loads (the target is at most 5)"


async def check_axe(page) -> None:
    results = await Axe().run(page)
    serious = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not serious, f"{page.url}: " + "; ".join(f"{v['id']}: {v['help']}" for v in serious)


async def tab_to(page, target: str, most: int = 40) -> None:
    """Press Tab until the focused element is the link with this text (or the field with this id)."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("() => [document.activeElement.id, document.activeElement.textContent.trim()]")
        if target in focused:
            return
    raise AssertionError(f"{target!r} is not reached with the Tab key")


async def keyboard_form(page, first: str, values: list[str], button: str) -> None:
    """Fill a form with the keyboard alone: Tab to its first field, type each value (Tab between
    them), Tab to the button and press Enter."""
    await tab_to(page, first)
    for n, value in enumerate(values):
        if n:
            await page.keyboard.press("Tab")
        await page.keyboard.type(value)
    await tab_to(page, button)
    await page.keyboard.press("Enter")


async def portal_sign_in(page, live, mailbox, email: str) -> None:
    await page.goto(f"{live.url}/portal/")
    assert "/portal/sign-in" in page.url
    seen = len(mailbox.messages)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await expect(page.locator("#sent")).to_be_visible()
    link = await eventually(lambda: sign_in_link(mailbox, email, seen), what=f"the sign-in email to {email}")
    await page.goto(link)
    await page.locator("#confirm-sign-in").click()
    await page.wait_for_url(f"{live.url}/portal/")


async def test_a_partner_user_does_the_top_tasks(live, ops, sessionmaker, mailbox, worker, new_context, screenshots):
    mine, theirs, _, theirs_h = await two_partners(live, ops, sessionmaker)
    their_deal = await register_deal(live, theirs_h, customer_name="Initech", customer_domain="initech.com")
    context = await new_context()
    page = await context.new_page()
    counter = Counter()
    counter.attach(page)

    async with Timed(counter, "Sign in (from the emailed link)"):
        await portal_sign_in(page, live, mailbox, "owner@contoso.test")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("what needs you now")
    await check_axe(page)
    await page.screenshot(path=screenshots / "portal-home-en.png", full_page=True)

    async with Timed(counter, "Mark an onboarding milestone done"):
        item = page.locator("li.item", has_text="Complete the first sales training")
        await item.get_by_role("button", name="Mark as done").click()
        await expect(page.locator("#notice")).to_have_text("Marked as done.")
    await expect(page.locator("li.item", has_text="Complete the first sales training")).to_have_count(0)

    async with Timed(counter, "Register a deal (another partner's customer: conflict shown)"):
        await page.get_by_role("link", name="Deals", exact=True).click()
        await page.get_by_label("Customer", exact=True).fill("Initech")
        await page.get_by_label("Customer's web domain").fill("initech.com")
        await page.get_by_label("Product category").fill("network")
        await page.get_by_label("Amount").fill("5000")
        await page.get_by_label("Expected close date").fill("2027-03-31")
        await page.get_by_role("button", name="Register the deal").click()
        await expect(page.locator("#notice")).to_contain_text("Already registered by another partner")
    await check_axe(page)

    async with Timed(counter, "Register a deal (keyboard only)"):
        await tab_to(page, "Deals")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{live.url}/portal/deals")
        await tab_to(page, "customer_name")
        for value in ("Globex Corporation", "globex.com", "network", "5000", "USD"):
            await page.keyboard.press("Control+a")
            await page.keyboard.type(value)
            await page.keyboard.press("Tab")
        await page.keyboard.type("03312027")  # the date field, as Chromium's keyboard entry takes it (en-US)
        await tab_to(page, "Register the deal")  # past the stage (qualification)
        await page.keyboard.press("Enter")
        await expect(page.locator("#notice")).to_have_text("Deal registered.")
    deal_url = page.url
    await check_axe(page)

    async with Timed(counter, "Follow a deal (from home)"):
        await page.get_by_role("link", name="Home").click()
        await page.get_by_role("link", name="Deals", exact=True).click()
        await page.get_by_role("link", name="Globex Corporation").click()
        await expect(page.locator("#deal-state")).not_to_be_empty()
    await page.get_by_role("link", name="All deals").click()
    await check_axe(page)
    await page.go_back()
    await eventually(lambda: _approved(page, deal_url), what="the deal approved (auto-approval)")

    async with Timed(counter, "Request a protection extension (keyboard only)"):
        await keyboard_form(page, "days", ["10", "the customer's board meets later"], "Request the extension")
        await expect(page.locator("#notice")).to_contain_text("Extension")
    await page.screenshot(path=screenshots / "portal-deal-en.png", full_page=True)

    async with Timed(counter, "Invite a colleague (keyboard only)"):
        await tab_to(page, "Team")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{live.url}/portal/team")
        await keyboard_form(page, "invite-name", ["Dana Sales", "dana@contoso.test"], "Invite")
        await expect(page.locator("#notice")).to_have_text("Dana Sales was invited.")
    await check_axe(page)

    # Another partner's deal: 404, and the page says nothing of it.
    response = await page.goto(f"{live.url}/portal/deals/{their_deal['id']}")
    assert response.status == 404
    await expect(page.locator("#error-message")).to_contain_text("no deal of yours")
    await expect(page.locator("body")).not_to_contain_text("Fabrikam")

    # German: the same pages in the user's language and formats.
    async with sessionmaker() as session, session.begin():
        user = await session.scalar(select(PartnerUser).where(PartnerUser.email == "owner@contoso.test"))
        user.language = "de"
    await page.goto(f"{live.url}/portal/")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("was jetzt ansteht")
    await check_axe(page)
    await page.screenshot(path=screenshots / "portal-home-de.png", full_page=True)
    await page.goto(deal_url)
    await expect(page.locator("#deal-amount")).to_have_text("5.000,00\xa0$")
    await page.screenshot(path=screenshots / "portal-deal-de.png", full_page=True)

    print("\nportal tasks (task | page loads | seconds):")
    for task, loads, seconds in TIMINGS:
        print(f"| {task} | {loads} | {seconds:.1f} |")


async def _approved(page, url) -> bool:
    await page.goto(url)
    return (await page.locator("#deal-state").inner_text()) == "approved"


async def test_lead_deal_and_mdf_tasks(live, ops, sessionmaker, mailbox, worker, new_context):
    """The lead, deal and MDF tasks as a person does them (timed like the others): answer lead
    offers from home and register the deal of the accepted one, move and close that deal, claim
    MDF with proof files; their pages pass axe-core. One browser session for the five tasks
    (about 25 s with its program, partners, leads and journeys)."""
    from tests.leads.test_api import lead_body
    from tests.mdf.test_api import FORMULA_CSV, PDF
    from tests.mdf.test_api import body as mdf_body

    mine, theirs, mine_h, theirs_h = await two_partners(live, ops, sessionmaker)
    r = await live.http.put(f"/leads/preferences/{theirs['id']}", json={"accepting": False}, headers=theirs_h)
    assert r.status_code == 200, r.text
    leads = [
        (
            await live.http.post("/leads", json=lead_body(domain=d, company=c, value=v, currency="USD"), headers=ops)
        ).json()
        for d, c, v in (("initech.test", "Initech", "5000.00"), ("hooli.test", "Hooli", "900.00"))
    ]
    webinar = mdf_body(activity_type="webinar", title="Spring webinar", amount_minor=80_000)
    req = (await live.http.post("/mdf/requests", json=webinar, headers=mine_h)).json()

    async def ready():
        states = [(await live.http.get(f"/leads/{lead['id']}", headers=ops)).json()["state"] for lead in leads]
        mdf = (await live.http.get(f"/mdf/requests/{req['id']}", headers=ops)).json()["state"]
        return states == ["offered", "offered"] and mdf == "approved"  # a webinar is pre-approved

    await eventually(ready, what="the offers and the pre-approved webinar")
    context = await new_context()
    page = await context.new_page()
    counter = Counter()
    counter.attach(page)
    await portal_sign_in(page, live, mailbox, "owner@contoso.test")
    await check_axe(page)  # home with the offers' inline forms

    async with Timed(counter, "Decline a lead offer (from home: a reason and a few words)"):
        item = page.locator("li.item", has_text="Hooli")
        await item.get_by_label("Reason").select_option("not_our_territory")
        await item.get_by_label("Why, in a few words").fill("we sell in Bavaria only")
        await item.get_by_role("button", name="Decline the lead: Hooli").click()
        await expect(page.locator("#notice")).to_have_text("Lead declined.")

    async with Timed(counter, "Accept a lead offer and register its deal (from home, prefilled)"):
        await page.locator("li.item", has_text="Initech").get_by_role("button", name="Accept").click()
        await expect(page.locator("#notice")).to_have_text("Lead accepted: register the deal for it.")
        await expect(page.get_by_label("Customer", exact=True)).to_have_value("Initech")
        await page.get_by_label("Expected close date").fill("2027-03-31")
        await page.get_by_role("button", name="Register the deal for this lead").click()
        await expect(page.locator("#notice")).to_have_text("Deal registered for the lead.")
    deal_url = page.url
    await eventually(lambda: _approved(page, deal_url), what="the deal approved (auto-approval)")
    await check_axe(page)

    async with Timed(counter, "Move a deal to another stage (on the deal)"):
        await page.get_by_label("New stage").select_option("proposal")
        await page.get_by_role("button", name="Move the deal").click()
        await expect(page.locator("#notice")).to_have_text("The deal moves to the stage: proposal.")

    async with Timed(counter, "Close a deal as won (on the deal)"):
        await page.get_by_role("button", name="Closed: won").click()
        await expect(page.locator("#notice")).to_have_text("The deal is closed as won.")

    async with Timed(counter, "Claim MDF with proof files (home, funds, the request)"):
        await page.get_by_role("link", name="Home").click()
        await page.get_by_role("link", name="Marketing funds").click()
        await page.get_by_role("link", name="Spring webinar").click()
        await page.get_by_label("Amount you claim").fill("400")
        await page.get_by_label("The activity's total cost").fill("800")
        await page.get_by_label("Invoice").set_input_files(
            {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        await page.get_by_label("Attendee list").set_input_files(
            {"name": "attendees.csv", "mimeType": "text/csv", "buffer": FORMULA_CSV}
        )
        await page.get_by_role("button", name="Submit the claim").click()  # the photo field left empty
        await expect(page.locator("#notice")).to_have_text("Claim submitted: $400.00, under review.")
    await expect(page.locator("#proofs")).to_contain_text("attendees.csv")
    await check_axe(page)

    lead = (await live.http.get(f"/leads/{leads[0]['id']}", headers=ops)).json()
    assert lead["state"] == "converted" and deal_url.endswith(lead["deal_id"])
    print("\nportal lead, deal and MDF tasks (task | page loads | seconds):")
    for task, loads, seconds in TIMINGS[-5:]:
        print(f"| {task} | {loads} | {seconds:.1f} |")
