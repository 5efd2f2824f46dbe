"""Offboarding takes effect at once (issue 29): a deactivated CAM's keys answer 401, its sessions
end, its sign-in links and one-click decision links are refused while its partners keep working
(handed over first: a CAM with partners is not deactivated, issue 22);
a removed operator's sessions end; 'sign out everywhere' ends every session of the account; an
operator decides the MDF levels of their stored approver level. Each step leaves an audit row."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import select

from domain.enums import Role
from store.models import AuditEvent
from tests.helpers.api import create_cam, enrol, new_key
from tests.helpers.waiting import eventually
from tests.web.flows import sign_in_link


@pytest_asyncio.fixture
async def browsers(live) -> AsyncIterator:
    """New HTTP clients of the live app, each with its own cookies (its own session)."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(base_url=live.url, timeout=30))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


async def ask_link(http, mailbox, email: str) -> tuple[str, str]:
    """A new sign-in link for `email` (its path) and the sign-in form's token of this client."""
    r = await http.get("/web/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    seen = len(mailbox.messages)
    assert (await http.post("/web/sign-in", data={"email": email, "csrf_token": token})).status_code == 200
    link = await eventually(lambda: sign_in_link(mailbox, email, seen), what=f"a sign-in link for {email}")
    return link.split("?")[0].split("/web/", 1)[1], token


async def use_link(http, link: tuple[str, str]) -> httpx.Response:
    path, token = link
    return await http.post(f"/web/{path}", data={"csrf_token": token, "next": "/web/"})


async def signed_in(http, mailbox, email: str) -> str:
    """Sign `http` in as `email`; returns the session's CSRF token (of its forms)."""
    r = await use_link(http, await ask_link(http, mailbox, email))
    assert r.status_code == 303, r.text
    page = await http.get("/web/")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def is_signed_in(http, path: str = "/web/") -> bool:
    r = await http.get(path, follow_redirects=False)
    assert r.status_code in (200, 303), r.text
    return r.status_code == 200


async def audit(sessionmaker, action: str) -> list[AuditEvent]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def _completed(answer) -> bool:
    return (await answer).json()["state"] == "completed"


async def test_a_deactivated_cam_is_refused_at_once_and_its_partners_keep_working(
    live, ops, mailbox, sessionmaker, browsers
):
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    partner = await enrol(live.http, ops, tier="gold", cam_id=cam["id"], domain=f"{uuid.uuid4().hex[:8]}.test")
    cam_key = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    partner_key = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    today = datetime.now(UTC).date()
    r = await live.http.post(
        "/mdf/requests",
        json={
            "activity_type": "event",
            "title": "Roadshow",
            "planned_start": str(today + timedelta(days=5)),
            "planned_end": str(today + timedelta(days=6)),
            "amount_minor": 100_000,
            "currency": "USD",
        },
        headers=partner_key,
    )
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]

    def approve_link() -> str | None:
        for m in mailbox.messages:
            if m["X-CAMLights-Template"] == "request_approval_request" and m["To"] == cam["email"]:
                url = re.search(r"Approve:\s+(\S+)", m.get_body(("plain",)).get_content()).group(1)
                return "/mdf/links/" + url.split("/mdf/links/", 1)[1]
        return None

    link = await eventually(approve_link, what="the CAM's approval email")
    first, second = browsers(), browsers()
    await signed_in(first, mailbox, cam["email"])
    unused = await ask_link(second, mailbox, cam["email"])  # asked before, used after the deactivation
    assert (await live.http.get(f"/cams/{cam['id']}", headers=cam_key)).status_code == 200

    r = await live.http.post(f"/cams/{cam['id']}/deactivate", headers=cam_key)
    assert r.status_code == 403  # only ops
    r = await live.http.post(f"/cams/{cam['id']}/deactivate", headers=ops)
    assert r.status_code == 409 and "still covers 1 partner(s)" in r.json()["detail"]  # hand over first
    robin = await create_cam(live.http, ops, email="robin@vendor.test", name="Robin")
    r = await live.http.post(f"/cams/{cam['id']}/handover", json={"to_cam_id": robin["id"]}, headers=ops)
    assert r.status_code == 202, r.text
    progress = f"/cams/{cam['id']}/handovers/{r.json()['id']}"
    await eventually(lambda: _completed(live.http.get(progress, headers=ops)), what="the partner handed over to Robin")
    desk = browsers()  # ops see the handover in the workspace
    await signed_in(desk, mailbox, live.settings.ops_email)
    row = (await desk.get("/web/ops")).text.split('id="handovers"', 1)[1].split("</tr>", 2)[1]
    assert "Casey" in row and "Robin" in row and "1 of 1" in row and "completed" in row, row
    r = await live.http.post(f"/cams/{cam['id']}/deactivate", headers=ops)
    assert r.status_code == 200, r.text
    assert (r.json()["keys_revoked"], r.json()["sessions_ended"]) == (1, 1)
    deactivated_at = r.json()["deactivated_at"]

    assert (await live.http.get(f"/cams/{cam['id']}", headers=cam_key)).status_code == 401
    assert not await is_signed_in(first)
    refused = await use_link(second, unused)
    assert refused.status_code == 403 and "no longer sign in" in refused.text
    decided = await live.http.post(link, data={"reason": "ok"})
    assert decided.status_code == 403 and "deactivated" in decided.text
    got = await live.http.get(f"/mdf/requests/{request_id}", headers=partner_key)  # the partner keeps working
    assert got.status_code == 200 and got.json()["state"] == "pending_approval"
    r = await live.http.post("/api-keys", json={"role": "cam", "cam_id": cam["id"]}, headers=ops)
    assert r.status_code == 422 and "deactivated" in r.text
    again = await live.http.post(f"/cams/{cam['id']}/deactivate", headers=ops)
    assert again.status_code == 200 and again.json()["deactivated_at"] == deactivated_at  # once
    rows = await audit(sessionmaker, "cam.deactivated")
    assert len(rows) == 1 and rows[0].detail["keys_revoked"] == 1 and rows[0].actor.startswith("ops:")


async def test_removed_operators_and_sign_out_everywhere_end_sessions_at_once(
    live, ops, mailbox, sessionmaker, browsers
):
    desk = browsers()
    csrf = await signed_in(desk, mailbox, live.settings.ops_email)
    r = await desk.post(
        "/web/ops/operators",
        data={"csrf_token": csrf, "email": "olga@vendor.test", "name": "Olga", "approver_level": "2"},
    )
    assert r.status_code == 303
    olga = browsers()
    await signed_in(olga, mailbox, "olga@vendor.test")
    page = await desk.get("/web/ops")
    assert "MDF levels up to 2" in page.text
    olga_id = re.search(r'/web/ops/operators/([0-9a-f-]+)/remove"', page.text.split("olga@vendor.test", 1)[1]).group(1)
    assert await is_signed_in(olga, "/web/ops")
    r = await desk.post(f"/web/ops/operators/{olga_id}/remove", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert not await is_signed_in(olga)
    removed = await audit(sessionmaker, "web.operator_removed")
    assert [(e.detail["email"], e.detail["sessions_ended"]) for e in removed] == [("olga@vendor.test", 1)]

    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    laptop, phone = browsers(), browsers()
    token = await signed_in(laptop, mailbox, cam["email"])
    await signed_in(phone, mailbox, cam["email"])
    r = await laptop.post("/web/sign-out-everywhere", data={"csrf_token": "forged"})
    assert r.status_code == 403 and await is_signed_in(phone)
    r = await laptop.post("/web/sign-out-everywhere", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert not await is_signed_in(phone) and not await is_signed_in(laptop)
    rows = await audit(sessionmaker, "web.signed_out_everywhere")
    assert [(e.actor, e.detail["sessions_ended"]) for e in rows] == [(f"cam:{cam['id']}", 2)]
