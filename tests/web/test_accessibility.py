"""Every page of the CAM workspace passes axe-core (axe-playwright-python, its bundled axe) with
no serious or critical violation: ops signed in on a program with a CAM, a partner, a deal, an MDF
request, a certification and a QBR scorecard, so the pages show their tables, sections and forms;
the sign-in pages and an error page too, and the portal's certifications, scorecard and QBR pages
(`/web/mdf/requests/{id}/journey` is a redirect to the Temporal UI, no page of ours). One browser
for all of them (expensive)."""

from __future__ import annotations

from datetime import timedelta

from domain.enums import Role
from tests.helpers.api import new_key
from tests.helpers.waiting import eventually
from tests.mdf.test_api import body as mdf_body
from tests.portal.flows import sign_in_link as portal_link
from tests.web.flows import add_certification, axe_violations, cam_with_partner, program, register_deal, sign_in


async def test_every_workspace_page_passes_axe(live, ops, mailbox, sessionmaker, new_context):
    await program(live, ops)
    cam, partner, partner_h = await cam_with_partner(live, ops, sessionmaker)
    deal = await register_deal(live, partner_h)
    r = await live.http.post("/mdf/requests", json=mdf_body(amount_minor=80_000), headers=partner_h)
    assert r.status_code == 201, r.text
    await add_certification(live, ops, partner["id"], timedelta(days=20))
    r = await live.http.post("/qbr/cycles", json={"period": "2026-Q3"}, headers=ops)
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
    # The portal's certifications, scorecard and QBR pages (the portal's browser test checks the others).
    portal = await context.new_page()
    await portal.goto(f"{live.url}/portal/sign-in")
    seen = len(mailbox.messages)
    await portal.get_by_label("Email address").fill(partner["contact_email"])
    await portal.get_by_role("button", name="Email me a sign-in link").click()
    await portal.goto(await eventually(lambda: portal_link(mailbox, partner["contact_email"], seen), what="the link"))
    await portal.locator("#confirm-sign-in").click()
    await portal.wait_for_url(f"{live.url}/portal/")
    for path in ("/portal/certifications", "/portal/scorecard", "/portal/qbr", "/portal/qbr/2026-Q3"):
        assert (await portal.goto(f"{live.url}{path}")).status == 200, path
        problems += await axe_violations(portal)
    assert not problems, "\n".join(problems)
    # axe sees what it must: an image without a text, a field without a label (a critical violation).
    await page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x><input id=unlabelled>')")
    assert {p.split(": ")[1].split(" ")[0] for p in await axe_violations(page)} >= {"image-alt", "label"}
