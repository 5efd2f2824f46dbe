"""The CAM workspace in headless Chromium against the live stack: sign-in by magic link, the
Today decisions (and a race between two sessions), portfolio scoping, CSRF, escaping and the
policy editor. Screenshots of the main pages go to test-output/screenshots/."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import expect

from domain.enums import Role
from store.models.web import WebSession
from tests.helpers.api import enrol, new_key
from tests.helpers.waiting import eventually
from tests.web.flows import (
    add_certification,
    cam_with_partner,
    deal_state,
    program,
    register_deal,
    sign_in,
    sign_in_link,
)


async def test_sign_in_by_magic_link_once_then_sign_out(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, _, _ = await cam_with_partner(live, ops, sessionmaker)
    page, link = await sign_in(await new_context(), live, mailbox, cam["email"])
    await expect(page.locator(".who")).to_contain_text("Casey")
    await expect(page.locator("#today-empty")).to_contain_text("Nothing needs you right now")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "camlights_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    headers = (await page.request.get(f"{live.url}/web/")).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"

    # The link works once: a second browser gets "already used", and no session.
    other = await (await new_context()).new_page()
    r = await other.goto(link)
    assert r.status == 410
    await expect(other.locator("#error-message")).to_contain_text("already used")

    # An unknown address gets the same answer as a known one, and no email.
    seen = len(mailbox.messages)
    await other.goto(f"{live.url}/web/sign-in")
    await other.get_by_label("Email address").fill("nobody@vendor.test")
    await other.get_by_role("button", name="Email me a sign-in link").click()
    await expect(other.locator("#sent")).to_contain_text("If nobody@vendor.test may sign in")
    # Links go out in the background: once a later request's link to a known address has arrived, none
    # came for the unknown one.
    await other.goto(f"{live.url}/web/sign-in")
    await other.get_by_label("Email address").fill(cam["email"])
    await other.get_by_role("button", name="Email me a sign-in link").click()
    await eventually(lambda: sign_in_link(mailbox, cam["email"], seen), what="the later link to a known address")
    assert sign_in_link(mailbox, "nobody@vendor.test", seen) == ""

    # Signing out ends the session on the server: the old cookie no longer opens a page.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{live.url}/web/sign-in")
    r = await live.http.get(
        "/web/portfolio", headers={"Cookie": f"camlights_session={cookie['value']}"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/web/sign-in")
    async with sessionmaker() as session:
        rows = (await session.execute(WebSession.__table__.select())).all()
    assert len(rows) == 1 and rows[0].ended_at is not None


async def test_approve_a_deal_from_today(live, ops, mailbox, sessionmaker, new_context, screenshots):
    await program(live, ops)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    other = await register_deal(live, partner_h, customer_name="Initech", customer_domain="initech.com")
    await add_certification(live, ops, partner["id"], timedelta(days=20))
    page, _ = await sign_in(await new_context(), live, mailbox, cam["email"])

    items = page.locator("#today-items > li")
    await expect(items).to_have_count(3)
    await expect(page.locator(".counts")).to_contain_text("2 Deal decision")
    row = page.locator(f"li[data-entity='{deal['id']}']")
    await expect(row).to_contain_text("Globex Corporation")
    await expect(row).to_contain_text("SLA ends in 47 h")
    await page.screenshot(path=screenshots / "today.png", full_page=True)

    await row.get_by_label("Reason").fill("strategic account")
    await row.get_by_role("button", name="Approve").click()
    await expect(page.locator(".flash")).to_contain_text("Globex Corporation: approved")
    await expect(page.locator(f"li[data-entity='{deal['id']}']")).to_have_count(0)
    await expect(page.locator(f"li[data-entity='{other['id']}']")).to_have_count(1)

    progress = (await live.http.get(f"/deals/{deal['id']}/progress", headers=ops)).json()
    assert progress["state"] == "approved" and progress["decided_by"] == f"cam:{cam['id']}"
    assert progress["decision_reason"] == "strategic account"

    # Rejecting needs a reason: without one nothing is sent to the journey.
    row = page.locator(f"li[data-entity='{other['id']}']")
    await row.get_by_role("button", name="Reject").click()
    await expect(page.locator(".flash")).to_contain_text("reason: say why")
    assert await deal_state(live, ops, other["id"]) == "pending_approval"

    await page.goto(f"{live.url}/web/portfolio")
    await expect(page.locator("#portfolio tbody tr")).to_have_count(1)
    await page.screenshot(path=screenshots / "portfolio.png", full_page=True)
    csv = await page.request.get(f"{live.url}/web/portfolio.csv")
    assert csv.ok and "Contoso Cloud,gold,onboarding" in await csv.text()

    await page.get_by_role("link", name="Contoso Cloud").click()
    await expect(page.locator("#deals")).to_contain_text("approved")
    await expect(page.locator("#journeys")).to_contain_text(f"deal-{deal['id']} in Temporal")
    await expect(page.locator("#timeline")).to_contain_text("deal.approved by Casey (CAM)")
    await expect(page.locator("#timeline")).to_contain_text("deal.registered by Contoso Cloud (partner)")
    await expect(page.locator("#timeline")).to_contain_text("onboarding.milestone_done by the deal journey")
    await page.screenshot(path=screenshots / "partner.png", full_page=True)
    await page.get_by_role("link", name="Globex Corporation").click()  # the deal, live from its journey
    await expect(page.locator("#deal-state")).to_have_text("approved")
    await expect(page.get_by_role("link", name="open in Temporal")).to_have_attribute(
        "href", f"http://127.0.0.1:8233/namespaces/default/workflows/deal-{deal['id']}"
    )


async def test_two_sessions_race_for_one_decision(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, _, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    first, _ = await sign_in(await new_context(), live, mailbox, cam["email"])
    second, _ = await sign_in(await new_context(), live, mailbox, cam["email"])
    for page in (first, second):  # both show the deal, with its form
        await expect(page.locator(f"li[data-entity='{deal['id']}']")).to_have_count(1)

    await first.locator(f"li[data-entity='{deal['id']}']").get_by_role("button", name="Approve").click()
    await expect(first.locator(".flash")).to_contain_text("approved")

    row = second.locator(f"li[data-entity='{deal['id']}']")  # the second page still shows the old list
    await row.get_by_label("Reason").fill("duplicate of an older opportunity")
    await row.get_by_role("button", name="Reject").click()
    notice = second.locator(".flash")
    await expect(notice).to_contain_text("Already decided by Casey (CAM) at ")
    await expect(notice).to_contain_text("the deal is approved")
    assert await second.title() == "Today · CAM Lights"  # the list again, not an error page
    assert await deal_state(live, ops, deal["id"]) == "approved"


async def test_another_cams_partner_is_refused(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    _, partner_a, _ = await cam_with_partner(live, ops, sessionmaker, cam_name="Casey", slug="contoso")
    cam_b, partner_b, _ = await cam_with_partner(
        live, ops, sessionmaker, cam_name="Robin", partner_name="Fabrikam", slug="fabrikam"
    )
    page, _ = await sign_in(await new_context(), live, mailbox, cam_b["email"])
    r = await page.goto(f"{live.url}/web/partners/{partner_a['id']}")
    assert r.status == 403
    await expect(page.locator("#error-message")).to_contain_text(f"may not access partner {partner_a['id']}")
    await expect(page.get_by_text("Contoso Cloud")).to_have_count(0)
    await page.goto(f"{live.url}/web/portfolio")
    await expect(page.locator("#portfolio tbody tr")).to_have_count(1)
    await expect(page.locator("#portfolio")).to_contain_text("Fabrikam")
    await page.get_by_label("Tier").select_option("platinum")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator(".empty")).to_contain_text("No partner matches")
    r = await page.goto(f"{live.url}/web/portfolio?tier=diamond")
    assert r.status == 422
    await expect(page.locator("#error-message")).to_contain_text("tier: one of platinum, gold, silver, registered")
    r = await page.goto(f"{live.url}/web/ops")  # and the ops pages are for ops
    assert r.status == 403
    r = await page.goto(f"{live.url}/web/partners/{partner_b['id']}")
    assert r.status == 200


async def test_a_form_without_its_csrf_token_is_refused(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, _, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    context = await new_context()
    page, _ = await sign_in(context, live, mailbox, cam["email"])
    target = f"{live.url}/web/deals/{deal['id']}/decision"
    for form in (
        {"decision": "approve", "reason": "x"},
        {"decision": "approve", "reason": "x", "csrf_token": "forged"},
    ):
        r = await context.request.post(target, form=form, max_redirects=0)  # the session cookie goes along
        assert r.status == 403
        assert "without a valid security token" in await r.text()
    assert await deal_state(live, ops, deal["id"]) == "pending_approval"  # nothing happened
    await expect(page.locator(f"li[data-entity='{deal['id']}']")).to_have_count(1)


async def test_a_script_in_a_partner_name_is_shown_as_text(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    evil = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>Evil Corp"
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker, partner_name=evil, slug="evil")
    await register_deal(live, partner_h)
    context = await new_context()
    dialogs = []
    context.on("dialog", lambda d: dialogs.append(d.message))
    page, _ = await sign_in(context, live, mailbox, cam["email"])
    await expect(page.locator("#today-items .partner")).to_have_text(evil)
    await page.goto(f"{live.url}/web/partners/{partner['id']}")
    await expect(page.locator("#partner-name")).to_have_text(evil)
    assert await page.title() == f"{evil} · CAM Lights"
    assert await page.locator("img[src=x]").count() == 0 and dialogs == []


async def test_ops_policy_edit_shows_field_errors_then_a_diff(
    live, ops, mailbox, sessionmaker, new_context, screenshots
):
    await program(live, ops)
    page, _ = await sign_in(await new_context(), live, mailbox, live.settings.ops_email)
    await page.goto(f"{live.url}/web/ops")
    await expect(page.locator("#workload")).to_have_count(0)  # no CAM yet: the empty state says what to do
    await expect(page.get_by_text("No CAM yet")).to_have_count(1)
    await page.screenshot(path=screenshots / "ops.png", full_page=True)
    await page.get_by_role("link", name="Steps retrying for longer than").click()
    await expect(page.locator(".empty")).to_contain_text("No step has been failing for that long")

    await page.goto(f"{live.url}/web/ops/policy")
    sla = page.get_by_label("deal.approval_sla_days", exact=True)
    await sla.fill("-1")
    await page.get_by_label("deal.currency", exact=True).fill("dollars")
    await page.get_by_role("button", name="Check and show the change").click()
    await expect(page.locator("#error-message")).to_contain_text("2 field(s) to correct")
    await expect(page.locator("[id='e-deal.approval_sla_days']")).to_contain_text("greater than 0")
    await expect(page.locator("[id='e-deal.currency']")).to_contain_text("should match pattern")
    await expect(page.get_by_label("deal.approval_sla_days", exact=True)).to_have_value("-1")  # what was typed stays

    # A rule across fields names its field; a valid edit shows the diff, then saves a new version.
    await page.get_by_label("deal.currency", exact=True).fill("EUR")
    await page.get_by_label("deal.approval_sla_days", exact=True).fill("9")
    await page.get_by_role("button", name="Check and show the change").click()
    await expect(page.locator("[id='e-deal.escalation_days']")).to_contain_text("must be longer than")
    await page.get_by_label("deal.approval_sla_days", exact=True).fill("3")
    await page.get_by_role("button", name="Check and show the change").click()
    diff = page.locator("#diff tbody tr")
    await expect(diff).to_have_count(2)
    await expect(page.locator("#diff")).to_contain_text("deal.approval_sla_days")
    await page.screenshot(path=screenshots / "policy.png", full_page=True)
    assert (await live.http.get("/policy", headers=ops)).json()["version"] == 2  # nothing saved yet
    await page.get_by_role("button", name="Save as version 3").click()
    await expect(page.locator(".flash")).to_contain_text("Saved as policy version 3")
    got = (await live.http.get("/policy", headers=ops)).json()
    assert got["version"] == 3 and got["policy"]["deal"]["approval_sla_days"] == 3
    assert got["policy"]["deal"]["currency"] == "EUR"


async def test_ops_find_journeys_by_search_attributes(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    mailbox.refuse("owner@contoso.test")  # the partner's welcome email fails for good (550)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    page, _ = await sign_in(await new_context(), live, mailbox, live.settings.ops_email)
    await page.goto(f"{live.url}/web/ops")  # the CAM workload: one partner, one deal waiting for Casey
    await expect(page.locator("#workload tbody tr")).to_have_count(1)
    cells = page.locator("#workload tbody tr td")
    await expect(cells).to_have_text(["Casey <contoso-cam@vendor.test>", "1", "1", "0"])

    async def failed_mail_listed():  # stuck: the email that was refused, with its error
        await page.goto(f"{live.url}/web/ops")
        return await page.locator("#unsent tbody tr", has_text="owner@contoso.test").count() == 1

    await eventually(failed_mail_listed, what="the refused welcome email on the ops page")
    row = page.locator("#unsent tbody tr", has_text="owner@contoso.test")
    await expect(row).to_contain_text("onboarding/welcome")
    await expect(row).to_contain_text("failed")
    await expect(row).to_contain_text("550")

    async def found():
        await page.goto(f"{live.url}/web/ops/journeys?partner_id={partner['id']}&journey=deal")
        return await page.locator("#found tbody tr").count() == 1

    await eventually(found, what="the deal journey in the visibility store")
    await expect(page.locator("#found")).to_contain_text(f"deal-{deal['id']}")
    await expect(page.locator("#query")).to_have_text(f"PartnerId = '{partner['id']}' AND Journey = 'deal'")
    r = await page.goto(f"{live.url}/web/ops/journeys?state=x' OR 1=1")
    assert r.status == 422  # the values go into a query: only plain identifiers
    partner_key = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    assert (await live.http.get("/web/ops", headers=partner_key, follow_redirects=False)).status_code == 303


async def test_grant_an_extension_and_mark_a_milestone_from_the_pages(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    page, _ = await sign_in(await new_context(), live, mailbox, cam["email"])
    await page.locator(f"li[data-entity='{deal['id']}']").get_by_role("button", name="Approve").click()
    await expect(page.locator(".flash")).to_contain_text("approved")
    r = await live.http.post(
        f"/deals/{deal['id']}/extensions", json={"days": 10, "reason": "customer board moved"}, headers=partner_h
    )
    assert r.status_code == 200 and r.json()["status"] == "awaiting_cam", r.text

    async def listed():
        await page.goto(f"{live.url}/web/")
        return await page.locator("li[data-kind='deal']", has_text="Extension request").count() == 1

    await eventually(listed, what="the extension request on Today")
    row = page.locator("li[data-kind='deal']", has_text="Extension request")
    await row.get_by_role("button", name="Grant").click()
    await expect(page.locator(".flash")).to_contain_text("Extension granted")
    progress = (await live.http.get(f"/deals/{deal['id']}/progress", headers=ops)).json()
    assert progress["extensions_used"] == 1 and progress["pending_extension_days"] is None
    await eventually(lambda: _gone(page, live), what="the answered request leaving Today")

    await page.goto(f"{live.url}/web/partners/{partner['id']}")
    await page.locator(".milestones li", has_text="Log in to the partner portal").get_by_role("button").click()
    await expect(page.locator(".flash")).to_contain_text("Milestone portal_access recorded as done")
    await expect(page.locator(".milestones li.done", has_text="Log in to the partner portal")).to_have_count(1)
    onboarding = (await live.http.get(f"/partners/{partner['id']}/onboarding", headers=ops)).json()
    done = {m["key"]: m["done_by"] for m in onboarding["milestones"] if m["done_at"]}
    assert done["portal_access"] == f"cam:{cam['id']}"


async def _gone(page, live) -> bool:
    await page.goto(f"{live.url}/web/")
    return await page.locator("li[data-kind='deal']", has_text="Extension request").count() == 0


async def test_a_journey_adds_a_section_with_a_chart_to_the_partner_page(live, ops, mailbox, sessionmaker, new_context):
    """The hook the QBR scorecard uses: a section provider, drawn with the server-side SVG chart."""
    from api.web.items import SECTIONS, Section
    from domain.charts import trend_svg

    async def scorecard(session, partner, ctx):
        points = [("2026-Q1", 61), ("2026-Q2", 68), ("2026-Q3", 74)]
        return Section(
            "Scorecard", "sections/trend.html.j2", {"chart": trend_svg(points), "caption": "band: healthy"}, 5
        )

    await program(live, ops)
    cam, partner, _ = await cam_with_partner(live, ops, sessionmaker)
    SECTIONS["test-scorecard"] = scorecard
    try:
        page, _ = await sign_in(await new_context(), live, mailbox, cam["email"])
        await page.goto(f"{live.url}/web/partners/{partner['id']}")
        chart = page.locator("section", has_text="Scorecard").locator("svg.trend")
        await expect(chart).to_be_visible()
        await expect(chart.locator("circle")).to_have_count(3)
        await expect(page.get_by_text("band: healthy")).to_be_visible()
    finally:
        del SECTIONS["test-scorecard"]


async def test_usable_on_a_phone_and_with_the_keyboard(live, ops, mailbox, sessionmaker, new_context, screenshots):
    await program(live, ops)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    page, _ = await sign_in(await new_context(width=390, height=844), live, mailbox, cam["email"])
    for path in ("/web/", f"/web/partners/{partner['id']}", "/web/portfolio"):
        await page.goto(f"{live.url}{path}")
        overflow = await page.evaluate("document.body.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is wider than a phone by {overflow}px"
    await page.goto(f"{live.url}/web/")
    await page.screenshot(path=screenshots / "today-phone.png", full_page=True)

    # Keyboard only: skip link first, then to the deal's reason field, type, and approve with Enter.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    reason = page.locator(f"li[data-entity='{deal['id']}']").get_by_label("Reason")
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await reason.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("the reason field cannot be reached with Tab")
    await page.keyboard.type("keyboard approval")
    await page.keyboard.press("Tab")  # the Approve button
    await page.keyboard.press("Enter")
    await expect(page.locator(".flash")).to_contain_text("approved")
    assert await deal_state(live, ops, deal["id"]) == "approved"


async def test_ops_see_a_step_retrying_for_long_with_its_error(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops, retrying_minutes=0.01)
    mailbox.defer("owner@busy.test")  # the partner's mailbox answers 451: the welcome keeps failing
    partner = await enrol(live.http, ops, tier="registered", domain="busy.test", name="Busy Bees")
    page, _ = await sign_in(await new_context(), live, mailbox, live.settings.ops_email)

    async def listed():
        await page.goto(f"{live.url}/web/ops/retrying")
        return await page.locator("#retrying tbody tr").count() == 1

    await eventually(listed, timeout=30, what="the retrying step on the ops page")
    row = page.locator("#retrying tbody tr")
    await expect(row).to_contain_text(f"onboarding-{partner['id']}")
    await expect(row).to_contain_text("outbox.notify")
    await expect(row).to_contain_text("451")
    mailbox.accept()
