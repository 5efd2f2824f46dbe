"""The MDF and QBR items of the CAM workspace in headless Chromium against the live stack: an
MDF request approved from Today through its journey (portfolio column, partner section), and a
tier review shown with its action and the health columns. The tier review and its scorecard are
seeded as the rows the provider reads (running a QBR cycle to get one would cost minutes): its
approval therefore reaches no running journey and is refused, leaving the review pending."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from domain.enums import Role
from journeys.qbr.models import QbrScorecard, QbrTierReview
from journeys.qbr.periods import period_of
from tests.helpers.api import new_key
from tests.helpers.waiting import eventually
from tests.web.flows import cam_with_partner, program, sign_in


def mdf_body(**over) -> dict:
    today = datetime.now(UTC).date()
    return {
        "activity_type": "event",
        "title": "Spring roadshow",
        "planned_start": str(today + timedelta(days=10)),
        "planned_end": str(today + timedelta(days=12)),
        "amount_minor": 50_000,
        "currency": "USD",
        "expected_outcomes": "20 qualified leads",
        **over,
    }


async def awaiting(live, cam_h, request_id: str) -> bool:
    r = await live.http.get("/mdf/requests", params={"awaiting_me": "true"}, headers=cam_h)
    return any(x["id"] == request_id for x in r.json())


async def test_approve_an_mdf_request_from_today(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    r = await live.http.post("/mdf/requests", json=mdf_body(), headers=partner_h)
    assert r.status_code == 201, r.text
    req = r.json()
    other = (await live.http.post("/mdf/requests", json=mdf_body(title="Webinar"), headers=partner_h)).json()
    await eventually(lambda: awaiting(live, cam_h, req["id"]), what="the request waiting for the CAM")
    await eventually(lambda: awaiting(live, cam_h, other["id"]), what="the second request waiting for the CAM")

    page, _ = await sign_in(await new_context(), live, mailbox, cam["email"])
    row = page.locator(f"li[data-entity='{req['id']}']")
    await expect(row).to_contain_text("MDF request")
    await expect(row).to_contain_text("Spring roadshow — USD 500.00")
    await expect(row).to_contain_text("SLA ends in")
    await expect(page.locator(".counts")).to_contain_text("2 MDF request")

    # Rejecting needs a reason; approving a lower amount needs the amount: nothing reaches the journey.
    second = page.locator(f"li[data-entity='{other['id']}']")
    await second.get_by_role("button", name="Reject").click()
    await expect(page.locator(".flash")).to_contain_text("reason: say why")
    second = page.locator(f"li[data-entity='{other['id']}']")
    await second.get_by_role("button", name="Approve lower amount").click()
    await expect(page.locator(".flash")).to_contain_text("amount: the lower amount")

    row = page.locator(f"li[data-entity='{req['id']}']")
    await row.get_by_label("Reason").fill("good plan")
    await row.get_by_role("button", name="Approve", exact=True).click()
    await expect(page.locator(".flash")).to_contain_text("Spring roadshow: approved")
    await expect(page.locator(f"li[data-entity='{req['id']}']")).to_have_count(0)
    await expect(page.locator(f"li[data-entity='{other['id']}']")).to_have_count(1)

    detail = (await live.http.get(f"/mdf/requests/{req['id']}", headers=ops)).json()
    assert detail["state"] == "approved" and detail["decided_by"] == f"cam:{cam['id']}", detail
    assert detail["approved_minor"] == 50_000

    # The other one approved for less, from the partner page's MDF section.
    await page.goto(f"{live.url}/web/partners/{partner['id']}")
    requests = page.locator("#mdf-requests")
    await expect(requests).to_contain_text("Spring roadshow")
    await expect(page.locator("#mdf-funds")).to_contain_text("USD")
    form = page.get_by_role("form", name="Decide this MDF request")
    await form.get_by_label("Lower amount").fill("300.00")
    await form.get_by_role("button", name="Approve lower amount").click()
    await expect(page.locator(".flash")).to_contain_text("Webinar: approved")
    detail = (await live.http.get(f"/mdf/requests/{other['id']}", headers=ops)).json()
    assert detail["state"] == "approved" and detail["approved_minor"] == 30_000, detail

    # The same decision again lost the race: the journey refuses it, the page says who decided.
    csrf = await page.locator("input[name='csrf_token']").first.get_attribute("value")
    again = await page.request.post(
        f"{live.url}/web/mdf/requests/{req['id']}/decision",
        form={"csrf_token": csrf or "", "decision": "reject", "reason": "late", "back": "/web/"},
        max_redirects=0,
    )
    assert again.status == 303
    await page.goto(f"{live.url}/web/")
    await expect(page.locator(".flash")).to_contain_text("Already decided by Casey (CAM)")

    funds = (await live.http.get(f"/partners/{partner['id']}/funds", headers=ops)).json()["funds"][0]
    available = funds["balances"]["available_minor"] / 100
    await page.goto(f"{live.url}/web/portfolio")
    table = page.locator("#portfolio")
    await expect(table.locator("thead")).to_contain_text("MDF available")
    await expect(table.locator("thead")).not_to_contain_text("Health")  # no scorecard yet: no health columns
    await expect(table.locator("tbody")).to_contain_text(f"{available:g}")


async def test_a_tier_review_waits_on_today(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, partner, _ = await cam_with_partner(live, ops, sessionmaker)
    period = period_of(datetime.now(UTC), "UTC")
    pid = uuid.UUID(partner["id"])
    async with sessionmaker() as session, session.begin():
        session.add(
            QbrScorecard(
                partner_id=pid,
                period=period,
                tier="gold",
                cam_id=uuid.UUID(cam["id"]),
                score=38.5,
                band="at_risk",
                trend=-12.0,
                metrics=[],
                inputs={},
                actions=[],
                policy_version=1,
            )
        )
        session.add(
            QbrTierReview(
                partner_id=pid,
                period=period,
                from_tier="gold",
                recommendation="demote",
                to_tier="silver",
                reasons=["revenue 20% of target (needs 60%)"],
                state="pending",
            )
        )

    page, _ = await sign_in(await new_context(), live, mailbox, cam["email"])
    row = page.locator(f"li[data-kind='qbr'][data-entity='{period}']")
    await expect(row).to_contain_text("Tier review")
    await expect(row).to_contain_text(f"{period}: demote (gold → silver)")
    await expect(row).to_contain_text("revenue 20% of target")
    await expect(row.get_by_role("button", name="Approve")).to_be_visible()
    await expect(row.get_by_role("button", name="Override")).to_be_visible()

    # An override needs a reason (checked by the QBR service before any journey is asked).
    await row.get_by_role("button", name="Override").click()
    await expect(page.locator(".flash")).to_contain_text("an override needs a reason")
    # Approving goes to the QBR journey, which these seeded rows do not have: refused, still pending.
    row = page.locator(f"li[data-kind='qbr'][data-entity='{period}']")
    await row.get_by_role("button", name="Approve").click()
    await expect(page.locator(".flash")).to_contain_text("not running")
    async with sessionmaker() as session:
        review = await session.get(QbrTierReview, (pid, period))
        assert review is not None and review.state == "pending"

    await page.goto(f"{live.url}/web/portfolio")
    table = page.locator("#portfolio")
    for label in ("Health", "Score", "Trend"):
        await expect(table.locator("thead")).to_contain_text(label)
    await expect(table.locator("tbody")).to_contain_text("at_risk")
    await expect(table.locator("tbody")).to_contain_text("-12")
    await page.goto(f"{live.url}/web/partners/{partner['id']}")
    await expect(page.locator("main")).to_contain_text("Scorecard")
    await expect(page.locator("svg.trend")).to_have_count(1)
