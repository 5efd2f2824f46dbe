"""Keyset pagination (`?after=<id>`) on the list endpoints: pages follow the list's order with
nothing skipped or repeated, filters and a CAM's scope still apply, and an unknown id is a 404
naming the parameter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.enums import Role, Tier
from tests.cert.factories import make_cert
from tests.deal.factories import make_deal
from tests.helpers.api import new_key
from tests.helpers.factories import make_cam, make_partner


async def pages(api, headers, path: str, size: int) -> list[list[str]]:
    out: list[list[str]] = []
    after = ""
    for _ in range(50):  # a cursor that does not move would page forever
        sep = "&" if "?" in path else "?"
        r = await api.get(f"{path}{sep}limit={size}{after}", headers=headers)
        assert r.status_code == 200, r.text
        ids = [row["id"] for row in r.json()]
        if not ids:
            return out
        out.append(ids)
        after = f"&after={ids[-1]}"
    raise AssertionError(f"{path}: still paging after 50 pages: {out[-2:]}")


async def test_keyset_pages_cover_each_list_in_order(api, ops, sessionmaker):
    cam, other_cam = await make_cam(sessionmaker), await make_cam(sessionmaker)
    mine = [await make_partner(sessionmaker, tier=Tier.gold, cam=cam) for _ in range(3)]
    theirs = await make_partner(sessionmaker, tier=Tier.gold, cam=other_cam)
    for i in range(7):
        partner = mine[i % 3] if i < 6 else theirs
        state = "approved" if i % 2 else "pending_approval"
        await make_deal(sessionmaker, partner, customer=f"Customer {i}", domain=f"c{i}.test", state=state)
    soon = datetime.now(UTC) + timedelta(days=30)
    for i in range(5):
        await make_cert(sessionmaker, mine[i % 3], expires_at=soon + timedelta(days=i % 2), person=f"Pat P{i}")

    for path, size in [("/deals", 3), ("/deals?state=approved", 2), ("/partners", 2), ("/certifications", 2)]:
        everything = [row["id"] for row in (await api.get(f"{path}", headers=ops)).json()]
        paged = await pages(api, ops, path, size)
        assert [i for page in paged for i in page] == everything, path
        assert all(len(page) <= size for page in paged) and len(paged) > 1, path

    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam.id)
    visible = {str(p.id) for p in mine}
    cam_deals = [i for page in await pages(api, cam_h, "/deals", 2) for i in page]
    assert len(cam_deals) == 6
    for deal_id in cam_deals:
        assert (await api.get(f"/deals/{deal_id}", headers=cam_h)).json()["partner_id"] in visible


async def test_unknown_after_is_a_404_naming_it(api, ops, sessionmaker):
    missing = uuid.uuid4()
    for path in ("/deals", "/partners", "/certifications"):
        r = await api.get(f"{path}?after={missing}", headers=ops)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"].startswith("after: no ") and str(missing) in r.json()["detail"]
    r = await api.get("/deals?after=not-a-uuid", headers=ops)
    assert r.status_code == 422
