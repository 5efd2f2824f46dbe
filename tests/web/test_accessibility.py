"""Every page of the CAM workspace passes axe-core (axe-playwright-python, its bundled axe) with
no serious or critical violation: ops signed in on a program with a CAM, a partner, a deal, an MDF
request, a certification and a QBR scorecard, so the pages show their tables, sections and forms;
the sign-in pages and an error page too (`/web/mdf/requests/{id}/journey` is a redirect to the
Temporal UI, no page of ours). On the same program, the partner's review tasks in the portal, timed
as a person does them (page loads counted) and each page through axe: the certifications, the
scorecard, the QBR's pre-read and accepting its invite (a valid .ics), completing an action item.
One browser for all of it: about a minute on the loaded 2-core machine (axe on 17 pages, the QBR's
cycle, a meeting that must have started before its notes), cheaper than a live server per part."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from icalendar import Calendar
from playwright.async_api import expect

from domain.enums import Role
from tests.helpers.api import new_key
from tests.helpers.waiting import eventually
from tests.mdf.test_api import body as mdf_body
from tests.portal.flows import sign_in_link as portal_link
from tests.web.flows import add_certification, axe_violations, cam_with_partner, program, register_deal, sign_in

PERIOD = "2025-Q4"  # a quarter no other test cycles (cycle ids are per period, one namespace per xdist worker)


class Loads:
    """Page loads of one page, and the timings of the tasks done on it (at most 5 loads each)."""

    def __init__(self, page):
        self.page, self.count, self.timings = page, 0, []
        page.on("load", lambda _: setattr(self, "count", self.count + 1))

    @asynccontextmanager
    async def timed(self, task: str):
        start, before = time.monotonic(), self.count
        yield
        await self.page.wait_for_load_state("load")  # the last page's load event counted
        self.timings.append((task, self.count - before, time.monotonic() - start))
        assert self.count - before <= 5, f"{task}: {self.count - before} page loads (the target is at most 5)"


async def qbr_state(live, headers, partner_id, state) -> bool:
    r = await live.http.get(f"/partners/{partner_id}/qbr/{PERIOD}", headers=headers)
    return r.status_code == 200 and r.json()["state"] == state


async def test_every_workspace_page_passes_axe(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    r = await live.http.post("/mdf/requests", json=mdf_body(amount_minor=80_000), headers=partner_h)
    assert r.status_code == 201, r.text
    await add_certification(live, ops, partner["id"], timedelta(days=20))
    r = await live.http.post("/qbr/cycles", json={"period": PERIOD}, headers=ops)
    assert r.status_code == 201, r.text
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])

    async def scored():
        r = await live.http.get(f"/partners/{partner['id']}/scorecards", headers=cam_h)
        return r.status_code == 200 and r.json()

    await eventually(scored, what="the partner's scorecard")
    context = await new_context()
    signed_out = await context.new_page()
    await signed_out.goto(f"{live.url}/web/sign-in")
    problems = await axe_violations(signed_out)
    page, link = await sign_in(context, live, mailbox, live.settings.ops_email)
    pages = [
        "/web/",
        "/web/portfolio",
        f"/web/partners/{partner['id']}",
        f"/web/deals/{deal['id']}",
        "/web/cams/capacity",
        "/web/ops",
        "/web/ops/journeys",
        "/web/ops/retrying",
        "/web/ops/policy",
        "/web/ops/simulations",
        "/web/partners/00000000-0000-0000-0000-000000000000",  # the error page
    ]
    for path in pages:
        response = await page.goto(f"{live.url}{path}")
        assert response is not None and response.status in (200, 404), (path, response and response.status)
        problems += await axe_violations(page)
    await page.goto(link)  # a used link's page
    problems += await axe_violations(page)
    # The partner's review tasks in the portal, timed as a person does them (page loads counted), each
    # page through axe: certifications, the scorecard, the QBR's pre-read and invite, an action item.
    portal = await context.new_page()
    await portal.goto(f"{live.url}/portal/sign-in")
    seen = len(mailbox.messages)
    await portal.get_by_label("Email address").fill(partner["contact_email"])
    await portal.get_by_role("button", name="Email me a sign-in link").click()
    await portal.goto(await eventually(lambda: portal_link(mailbox, partner["contact_email"], seen), what="the link"))
    await portal.locator("#confirm-sign-in").click()
    await portal.wait_for_url(f"{live.url}/portal/")
    loads = Loads(portal)
    async with loads.timed("See the certifications and what a lapse restricts (from home)"):
        await portal.get_by_role("link", name="Certifications").click()
        await expect(portal.locator("#lapse")).to_contain_text("refused")
    problems += await axe_violations(portal)
    async with loads.timed("See the scorecard and what the next tier takes"):
        await portal.get_by_role("link", name="Scorecard", exact=True).click()
        await expect(portal.locator("#requirements")).to_contain_text("closed-won")
    problems += await axe_violations(portal)
    await eventually(lambda: qbr_state(live, cam_h, partner["id"], "scheduling"), what="the QBR to schedule")
    start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    r = await live.http.post(
        f"/partners/{partner['id']}/qbr/{PERIOD}/meeting", json={"starts_at": start.isoformat()}, headers=cam_h
    )
    assert r.status_code == 200, r.text
    async with loads.timed("Read the QBR pre-read and accept the meeting (.ics)"):
        await portal.get_by_role("link", name="Your quarterly business reviews").click()
        await portal.get_by_role("link", name=PERIOD).click()
        await expect(portal.locator("#pre-read")).to_contain_text("Revenue against the target")
        async with portal.expect_download() as download:
            await portal.locator("#accept").click()
        ics = Path(await (await download.value).path()).read_text()
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    assert event.decoded("DTSTART") == start
    problems += await axe_violations(portal)
    notes = {
        "notes": "Agreed.",
        "action_items": [{"title": "Certify a second engineer", "owner": "partner", "due": "2030-01-31"}],
    }

    async def recorded():
        r = await live.http.post(f"/partners/{partner['id']}/qbr/{PERIOD}/notes", json=notes, headers=cam_h)
        return r.status_code == 200 or (r.status_code == 409 and "not taken place" in r.text and None)

    await eventually(recorded, what="the notes after the meeting started")
    async with loads.timed("Complete a QBR action item (from home)"):
        await portal.get_by_role("link", name="Home").click()
        await portal.get_by_role("button", name="Done: Certify a second engineer").click()
        await expect(portal.locator("#notice")).to_have_text("Action item done.")
    problems += await axe_violations(portal)
    print("\nportal review tasks (task | page loads | seconds):")
    for task, count, seconds in loads.timings:
        print(f"| {task} | {count} | {seconds:.1f} |")
    assert not problems, "\n".join(problems)
    # axe sees what it must: an image without a text, a field without a label (a critical violation).
    await page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x><input id=unlabelled>')")
    assert {p.split(": ")[1].split(" ")[0] for p in await axe_violations(page)} >= {"image-alt", "label"}
