"""The what-if page (`/web/ops/simulations`, docs/simulator.md): an invalid draft is refused
naming the field; a valid one runs, and its report shows side by side with small bars."""

from __future__ import annotations

from playwright.async_api import expect

from tests.helpers.waiting import eventually
from tests.web.flows import program, sign_in


async def test_ops_simulate_a_draft_and_read_the_report_with_bars(live, ops, mailbox, new_context, screenshots):
    await program(live, ops)
    page, _ = await sign_in(await new_context(), live, mailbox, live.settings.ops_email)
    await page.goto(f"{live.url}/web/ops")
    await page.get_by_role("link", name="What if?").click()
    draft = page.locator("textarea[name=draft]")
    await draft.fill('{"deal": {"approval_sla_days": -1}}')
    await page.get_by_role("button", name="Simulate").click()
    await expect(page.locator(".flash")).to_contain_text("deal.approval_sla_days")

    await draft.fill('{"deal": {"approval_sla_days": 1, "escalation_days": 2}}')
    await page.locator("input[name=partners]").fill("3")
    await page.locator("input[name=months]").fill("1")
    await page.get_by_role("button", name="Simulate").click()
    await expect(page.locator(".flash")).to_contain_text("Simulation started: 3 partners, 1 months")

    async def done() -> bool:
        await page.reload()
        return await page.locator("section.simulation h2", has_text="done").count() == 1

    await eventually(done, timeout=300, interval=3, what="the simulation to finish")
    await expect(page.locator("table.what-if svg.bars")).to_have_count(19)
    for label in (
        "escalations per CAM per week",
        "QBR meetings per CAM",
        "MDF claimed amount",
        "MDF paid amount",
        "MDF requests expired unclaimed",
        "leads unplaced",
    ):
        await expect(page.locator("table.what-if")).to_contain_text(label)
    await page.screenshot(path=screenshots / "simulations.png", full_page=True)
