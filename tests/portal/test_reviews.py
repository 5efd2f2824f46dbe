"""The partner portal's certifications, scorecard and QBR pages over real HTTP (the live app,
PostgreSQL, SMTP sink, Temporal and a worker): the certifications with what a lapse would
restrict; the scorecard with its trend and what it takes to reach the next tier; a CAM-led QBR's
pre-read, its invite (a valid iCalendar file) and completing an action item the partner owns
through the journey's update. Another partner's QBR, invite and action items answer 404 and change
nothing; hostile names render as text; forms need the session's CSRF token."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
from icalendar import Calendar

from domain.enums import Role
from journeys.qbr.models import Qbr, QbrActionItem
from tests.helpers.api import create_cam, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from tests.portal.flows import sign_in

PERIOD = "2025-Q3"  # a quarter no other test cycles (cycle ids are per period, one namespace per xdist worker)
HOSTILE = "<img src=x onerror=alert(1)>"


async def cam_led_partner(live, ops, sessionmaker):
    """A gold partner with its CAM under a policy of one-second days (the QBR's windows long)."""
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["qbr"].update(schedule_deadline_days=600, meeting_window_days=900)
    policy["cert"].update(grace_days=14, lapse_action="review")
    assert (await live.http.put("/policy", json=policy, headers=ops)).status_code == 201
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    mine = await enrol(live.http, ops, tier="gold", cam_id=cam["id"], domain="contoso.test", name="Contoso Cloud")
    theirs = await enrol(live.http, ops, tier="registered", domain="fabrikam.test", name="Fabrikam Systems")
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    return mine, theirs, cam_h


async def their_qbr(sessionmaker, partner_id) -> None:
    """Another partner's QBR of another quarter, with a meeting and an open action item of theirs."""
    async with sessionmaker() as session, session.begin():
        session.add(
            Qbr(partner_id=partner_id, period="2026-Q1", state="following_up", meeting_uid="theirs", ics="BEGIN:X")
        )
        session.add(
            QbrActionItem(
                partner_id=partner_id,
                period="2026-Q1",
                item_no=1,
                title="Theirs",
                owner="partner",
                due=date(2030, 1, 1),
            )
        )


async def test_certifications_scorecard_and_a_qbr_in_the_portal(live, ops, sessionmaker, mailbox, worker):
    mine, theirs, cam_h = await cam_led_partner(live, ops, sessionmaker)
    pid = mine["id"]
    soon = datetime.now(UTC) + timedelta(days=20)
    for person, track, expires in (
        (HOSTILE, "Network Associate", soon),
        ("Kim", "Cloud Expert", soon + timedelta(days=300)),
    ):
        body = {
            "partner_id": pid,
            "person_name": person,
            "person_email": "kim@contoso.test",
            "track": track,
            "product_category": "network",
            "issued_at": "2026-01-01T00:00:00Z",
            "expires_at": expires.isoformat(),
        }
        r = await live.http.post("/certifications", json=body, headers=ops)
        assert r.status_code == 201, r.text
    await their_qbr(sessionmaker, theirs["id"])
    r = await live.http.post("/qbr/cycles", json={"period": PERIOD}, headers=ops)
    assert r.status_code == 201, r.text

    async def qbr_state(state):
        r = await live.http.get(f"/partners/{pid}/qbr/{PERIOD}", headers=cam_h)
        return r.json() if r.status_code == 200 and r.json()["state"] == state else None

    await eventually(lambda: qbr_state("scheduling"), what="the QBR waiting for a meeting time")
    csrf = await sign_in(live.http, mailbox, "owner@contoso.test")

    # Certifications: each with its expiry, and what a lapse would restrict, from the policy.
    page = (await live.http.get("/portal/certifications")).text
    assert page.index("Network Associate") < page.index("Cloud Expert")  # the soonest expiry first
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "A certification lapses 14 days after it expires (the grace period)." in page
    assert "waits for your CAM&#39;s review" in page and "Deal registration in network" in page

    # The scorecard: its trend chart and the next tier's bars in figures (gold's rules, platinum's certs).
    page = (await live.http.get("/portal/scorecard")).text
    assert f"The {PERIOD} scorecard" in page and '<svg class="trend"' in page
    assert "What it takes to reach Platinum" in page
    assert "$300,000.00 closed-won" not in page and "of $300,000.00 (150% of your $200,000.00 target)" in page
    assert "0 of 6: 6 more" in page and "2 of 4: 2 more" in page  # registrations; current certifications

    # The QBR: the partner proposes the meeting on its page (the journey's schedule update, a time in
    # the user's time zone); a time that is no time, or past, is refused in words.
    back = f"/portal/qbr/{PERIOD}"
    assert 'id="propose"' in (await live.http.get(back)).text
    for bad, said in (("tomorrow", "starts_at: a date and time"), ("2020-01-01T10:00", "must be in the future")):
        r = await live.http.post(f"{back}/meeting", data={"csrf_token": csrf, "starts_at": bad})
        assert r.status_code == 303 and r.headers["location"] == back
        shown = (await live.http.get(back)).text
        assert said in shown, shown[shown.find('id="notice"') :][:300]
    start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    form = {"csrf_token": csrf, "starts_at": start.strftime("%Y-%m-%dT%H:%M:%S"), "duration_minutes": "45"}
    r = await live.http.post(f"{back}/meeting", data=form)
    assert "Meeting proposed for" in (await live.http.get(r.headers["location"])).text
    meeting = (await live.http.get(f"/partners/{pid}/qbr/{PERIOD}", headers=cam_h)).json()["meeting"]
    assert meeting["by"].startswith("partner:") and meeting["starts_at"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S"))
    page = (await live.http.get(f"/portal/qbr/{PERIOD}")).text
    assert 'id="accept"' in page and "Pre-read" in page and "Revenue against the target" in page
    r = await live.http.get(f"/portal/qbr/{PERIOD}/invite.ics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    assert r.headers["content-disposition"] == f'attachment; filename="qbr-{PERIOD}.ics"'
    (event,) = Calendar.from_ical(r.text).walk("VEVENT")
    assert event.decoded("DTSTART") == start and event.decoded("DTEND") == start + timedelta(minutes=45)
    assert "owner@contoso.test" in r.text

    # After the meeting the CAM records the notes: one item the partner owns, one the CAM's.
    notes = {
        "notes": "Plan agreed.",
        "action_items": [
            {"title": HOSTILE, "owner": "partner", "due": "2030-01-31"},
            {"title": "Send the MDF catalog", "owner": "cam", "due": "2030-01-31"},
        ],
    }

    async def recorded():
        r = await live.http.post(f"/partners/{pid}/qbr/{PERIOD}/notes", json=notes, headers=cam_h)
        return r.status_code == 200 or (r.status_code == 409 and "not taken place" in r.text and None)

    await eventually(recorded, what="the notes recorded after the meeting started")
    home = (await live.http.get("/portal/")).text
    assert "QBR action item" in home and HOSTILE not in home
    assert f'action="/portal/qbr/{PERIOD}/action-items/1/complete"' in home
    page = (await live.http.get(f"/portal/qbr/{PERIOD}")).text
    assert "/action-items/2/complete" not in page  # the CAM's item: no button for the partner
    # Without the CSRF token: refused, nothing done.
    r = await live.http.post(f"/portal/qbr/{PERIOD}/action-items/1/complete", data={})
    assert r.status_code == 403
    # The CAM's item: refused, said plainly; then the partner's own: done through the journey.
    r = await live.http.post(f"/portal/qbr/{PERIOD}/action-items/2/complete", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert "the partner may not complete it" in (await live.http.get(r.headers["location"])).text
    back = f"/portal/qbr/{PERIOD}"
    r = await live.http.post(f"/portal/qbr/{PERIOD}/action-items/1/complete", data={"csrf_token": csrf, "back": back})
    assert r.status_code == 303 and r.headers["location"] == back
    assert "Action item done." in (await live.http.get(back)).text
    items = (await live.http.get(f"/partners/{pid}/action-items", headers=cam_h)).json()
    assert [(i["item_no"], bool(i["done_at"])) for i in items] == [(1, True), (2, False)]

    # Another partner's QBR, invite and action item: 404, and their item stays open.
    for path in ("/portal/qbr/2026-Q1", "/portal/qbr/2026-Q1/invite.ics"):
        assert (await live.http.get(path)).status_code == 404, path
    later = {"csrf_token": csrf, "starts_at": "2030-01-01T10:00"}
    assert (await live.http.post("/portal/qbr/2026-Q1/meeting", data=later)).status_code == 404
    r = await live.http.post("/portal/qbr/2026-Q1/action-items/1/complete", data={"csrf_token": csrf})
    assert r.status_code == 404
    theirs_items = (await live.http.get(f"/partners/{theirs['id']}/action-items", headers=ops)).json()
    assert [i["done_at"] for i in theirs_items] == [None]
    assert (await live.http.get("/portal/qbr/2026-Q5")).status_code == 422  # not a quarter: said, no 500

    # In German: the bars and money in the user's formats.
    r = await live.http.post("/portal/me", data={"csrf_token": csrf, "language": "de", "time_zone": "Europe/Berlin"})
    assert r.status_code == 303
    page = (await live.http.get("/portal/scorecard")).text
    assert "Was es für Platin braucht" in page and "300.000,00\xa0$" in page
    assert "Solange sie verfallen ist" in (await live.http.get("/portal/certifications")).text
    async with httpx.AsyncClient(base_url=live.url) as anonymous:  # signed out: to the sign-in page
        for path in ("/portal/certifications", "/portal/scorecard", "/portal/qbr", back):
            r = await anonymous.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/portal/sign-in"), path
